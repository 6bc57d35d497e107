"""rules.toml, the peers' published shapes as data: each one cited, reachable and found.

Samples are drawn at random from each rule's own pattern (never copied from anywhere), so
the test holds the data to itself: a rule whose keywords miss its own matches, or whose
gates refuse what it describes, fails here.
"""

from __future__ import annotations

import re
import secrets

import pytest

from keyturn.scan import scan_bytes
from keyturn.scan.detect import _shape_decided, find_hits
from keyturn.scan.rules import RULES, jwt_header_decodes, load
from tests.scan import keygen

REPORTED = [r for r in RULES.rules if r.report]
# Patterns that need a word break (\b) between two parts a random draw glues together
# ("influxtoken"); their shapes are real, only drawing them blind is not.
UNDRAWABLE = {
    "aiven-auth-token", "amplitude-secret-key", "couchbase-capella-api-key",
    "curl-auth-header", "curl-auth-user", "influxdb-api-token",
}
ALONE = [r for r in REPORTED if not r.requires and not r.check and r.id not in UNDRAWABLE]
# Draws per rule: a rule whose draws are found less than half the time (asaas: 44%) failed
# all of 10 about once in 300 runs; 30 make that about once in 30 million.
DRAWS = 30


def test_every_rule_cites_a_published_source_and_compiles() -> None:
    assert len(RULES.rules) >= 450
    for rule in RULES.rules:
        cited = r"(betterleaks|gitleaks|trufflehog|osv-scalibr veles|[A-Z][\w ]+ docs) "
        assert re.match(cited, rule.source), rule.id
        assert rule.regex.groups >= 0 and rule.keywords
        assert all(k == k.lower() for k in rule.keywords)
    ids = [r.id for r in RULES.rules]
    assert len(ids) == len(set(ids))
    known = set(ids)
    assert all(needed in known for r in RULES.rules for needed in r.requires)


def _line(rule) -> str:  # type: ignore[no-untyped-def]
    sample = keygen.draw(rule.pattern)
    # A rule without a literal in every match runs where its provider is named.
    context = "" if rule.anchored else f"# {rule.keywords[0].decode()}\n"
    return context + sample.replace("\n", " ") + "\n" if "PRIVATE" not in sample else (
        context + sample + "\n")


@pytest.mark.parametrize("rule", ALONE, ids=[r.id for r in ALONE])
def test_a_secret_drawn_from_each_rule_is_found(rule) -> None:  # type: ignore[no-untyped-def]
    # Random fillers (the 0-20 characters between a keyword and its value) can draw a
    # quote or an operator the pattern cannot take twice; one good draw in thirty is enough,
    # and in practice most are.
    found = decided = 0
    for _ in range(DRAWS):
        text = _line(rule)
        hits = find_hits(text.encode(), config_like=True)
        found += bool(hits)
        match = rule.regex.search(text.encode())
        if match and not hits:
            # A prefix the catalogue owns (GitHub's checksummed tokens, a publishable key):
            # the catalogue's checksum and shapes decide, and test_detect holds those.
            start, end = rule.secret_span(match)
            decided += _shape_decided(text.encode()[start:end].decode())
        if found or decided:
            return
    pytest.fail(f"no draw of {rule.id} was found in {DRAWS}")


@pytest.mark.parametrize("rule", [r for r in ALONE if r.anchored],
                         ids=[r.id for r in ALONE if r.anchored])
def test_every_match_holds_one_of_its_rules_keywords(rule) -> None:  # type: ignore[no-untyped-def]
    # The prefilter searches only around keywords: a match without one would never be seen.
    for _ in range(DRAWS):
        sample = keygen.draw(rule.pattern).lower().encode()
        assert any(k in sample for k in rule.keywords), (rule.id, sample[:60])


def test_a_rule_that_requires_another_counts_only_beside_it() -> None:
    ruleset = load('''
[[rule]]
id = "acme-id"
provider = "Acme"
kind = "client id"
source = "gitleaks acme-id"
confidence = "high"
keywords = ["acmeid_"]
pattern = 'acmeid_[0-9a-f]{8}'
report = false

[[rule]]
id = "acme-secret"
provider = "Acme"
kind = "client secret"
source = "gitleaks acme-secret"
confidence = "high"
keywords = ["acmesec_"]
pattern = 'acmesec_([0-9A-Za-z]{24})'
requires = ["acme-id"]
within = 2
''')
    from keyturn.scan.rules import rule_matches

    secret = "acmesec_" + keygen.draw("[0-9A-Za-z]{24}")
    ident = "acmeid_" + keygen.draw("[0-9a-f]{8}")
    alone = f"{secret}\n".encode()
    near = f"{ident}\nx\n{secret}\n".encode()
    far = f"{ident}\n\n\n\n{secret}\n".encode()
    assert rule_matches(alone, alone.lower(), ruleset) == []
    assert [m.rule.id for m in rule_matches(near, near.lower(), ruleset)] == ["acme-secret"]
    assert rule_matches(far, far.lower(), ruleset) == []


def test_jwts_must_decode() -> None:
    token = keygen.jwt()
    assert jwt_header_decodes(token.encode())
    (finding,) = scan_bytes(f"auth = '{token}'\n".encode(), "a.py")
    assert finding.provider_id == "jwt" and finding.code == "leaked_provider_key"
    segment = "[A-Za-z0-9]{30}"
    fake = f"eyJ{keygen.draw(segment)}.eyJ{keygen.draw(segment)}.{keygen.draw('[A-Za-z0-9_-]{43}')}"
    assert not jwt_header_decodes(fake.encode())
    assert not [f for f in scan_bytes(f"x = '{fake}'\n".encode(), "a.py") if f.provider_id == "jwt"]


def test_placeholders_in_rule_shapes_are_not_findings() -> None:
    for text in (
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n",  # AWS's documentation key
        "slack_token = 'xoxb-xxxxxxxxxxx-xxxxxxxxxxxxx'\n",
        "password: ${DB_PASSWORD}\n",
        "url = 'postgres://user:${PASSWORD}@db:5432/app'\n",
    ):
        assert not find_hits(text.encode(), config_like=True), text


def _value() -> str:
    """A key as a provider draws it: uniform base62 (a digit and a letter at the end, so the
    rare all-letter draw cannot fail the gates that ask for both)."""
    return keygen.draw("[A-Za-z0-9]{30}") + "7k"


def _value_for(name: str) -> str:
    """A key for the provider named ``name``: of its documented shape where [near] has one."""
    index = RULES.keywords.index(name.encode())
    (rule,) = RULES.near_by[index]
    if not rule.pattern:
        return _value()
    value = ""
    while not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        value = keygen.draw(_shape_of(rule))
    return value


def _shape_of(rule) -> str:  # type: ignore[no-untyped-def]
    return rule.pattern.split("(?:", 1)[1].rsplit(")(?!", 1)[0]


@pytest.mark.parametrize("name, template", [
    ("ambee", "[DEBUG] ambee key: {v}"),
    ("aylien", 'aylienToken := "{v}"'),
    ("pandadoc", "<secret>{{pandadoc {v}}}</secret>"),
    ("wakatime", "export WAKATIME_API_KEY={v}"),
])
def test_a_random_value_near_a_providers_name_is_a_possible_secret(
        name: str, template: str) -> None:
    value = _value_for(name)
    (finding,) = scan_bytes(template.format(v=value).encode(), "notes.txt")
    assert finding.code == "possible_secret" and finding.confidence == "medium"
    assert value not in finding.masked


def test_near_needs_the_name_close_a_whole_value_and_a_real_provider() -> None:
    value = _value()
    assert not find_hits(f"ambee {'x ' * 30}{value}\n".encode())  # further than 40 bytes
    assert not find_hits(f"ambee key: {value[:12]}?{value[12:]}\n".encode())  # a broken value
    assert not find_hits(f"monday meeting id {value}\n".encode())  # a word, not a provider
    assert not find_hits(b"ambee key: your-ambee-api-key-here-0000\n")


def test_a_misspelt_field_or_section_is_an_error_not_a_silent_no_op() -> None:
    rule = ('[[rule]]\nid = "x"\nprovider = "X"\nkind = "key"\nsource = "gitleaks x"\n'
            'confidence = "high"\nkeywords = ["xk_"]\npattern = "xk_[a-z]{20}"\n')
    assert load(rule).rules[0].id == "x"
    with pytest.raises(ValueError, match="min_entrpy"):
        load(rule + "min_entrpy = 3.0\n")
    with pytest.raises(ValueError, match="alow"):
        load("[alow]\nsecret = []\n" + rule)


def test_the_shared_allow_list_is_loaded() -> None:
    assert RULES.allow and RULES.stopwords
    assert "1password-secret-key" in {r.id for r in RULES.rules}


@pytest.mark.parametrize("pattern", [
    "[0-9a-f]{31}",  # hex of an odd length: not whole bytes
    "[0-9a-f]{7}g-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",  # a UUID with a g in it
])
def test_values_that_break_their_own_encoding_are_not_secrets(pattern: str) -> None:
    value = keygen.draw(pattern)
    assert not find_hits(f'API_SECRET = "{value}"\n'.encode())
    assert not find_hits(f"[DEBUG] ambee key: {value}\n".encode())


def test_identifiers_near_a_providers_name_are_not_secrets() -> None:
    assert not find_hits(b"frameio = self._h2_state.max_outbound_frame_size_2\n")
    assert not find_hits(b"ambee: dec_loop_generic_32_bytes\n")


def _shaped(name: str):  # type: ignore[no-untyped-def]
    return next(r for rules in RULES.near_by for r in rules if r.provider == name)


@pytest.mark.parametrize("provider, template", [
    ("Box", "[INFO] sending request to box API\n[DEBUG] using Key={v}\n"),
    ("IP2Location", 'IP2LOCATION_API_KEY = "{v}"\n'),
    ("Abstract", "<secret>{{abstract AQAAABAAA {v}}}</secret>\n"),
])
def test_a_value_of_a_providers_documented_shape_near_its_name_is_found(
        provider: str, template: str) -> None:
    # A short or common name (box, abstract) names no one on its own; with the shape its
    # detector documents (length and characters), a value of that shape beside it does.
    shape = _shape_of(_shaped(provider))
    value = keygen.draw(shape)
    while not any(c.isdigit() for c in value):
        value = keygen.draw(shape)
    (finding,) = scan_bytes(template.format(v=value).encode(), "notes.txt")
    assert finding.provider == provider and finding.code == "possible_secret"


@pytest.mark.parametrize("cut", [
    lambda v: v[:-1],  # a character short
    lambda v: v + "Q",  # a character too many
    lambda v: v[:10] + "?" + v[11:],  # a character that is no part of the shape
])
def test_a_value_not_of_the_named_providers_shape_is_a_near_miss(cut) -> None:  # type: ignore[no-untyped-def]
    value = cut(keygen.draw("[0-9A-Z]{30}") + "7K")  # IP2Location: 32 of [0-9A-Z]
    for text in (f'IP2LOCATION_API_KEY = "{value}"\n', f"ip2location key: {value}\n",
                 f"export IP2LOCATION_TOKEN={value}\n"):
        assert not find_hits(text.encode(), config_like=True), text


def test_a_near_provider_field_is_checked_too() -> None:
    near = ('[near]\nsource = "trufflehog"\nreach = 40\nmin_length = 16\nmax_length = 100\n'
            'min_entropy = 3.5\nproviders = [{name = "Acme", keywords = ["acme"], shap = "x"}]\n'
            '[[rule]]\nid = "x"\nprovider = "X"\nkind = "key"\nsource = "gitleaks x"\n'
            'confidence = "high"\nkeywords = ["xk_"]\npattern = "xk_[a-z]{20}"\n')
    with pytest.raises(ValueError, match="shap"):
        load(near)


def test_a_providers_name_counts_where_it_begins_a_word() -> None:
    value = "00" + keygen.draw("[a-zA-Z0-9]{38}") + "7k"  # Okta's documented shape
    assert find_hits(f"okta_token: {value}\n".encode())
    assert find_hits(f"myOktaToken = '{value}'\n".encode())
    assert not find_hits(f"rookTable {value}\n".encode())  # `okta` inside a word


def test_basic_credentials_count_when_they_decode_to_a_user_and_a_password() -> None:
    from keyturn.scan.rules import basic_auth_decodes

    password = keygen.draw("[A-Za-z0-9]{20}")
    good = keygen._basic(f"deploy:{password}")
    assert basic_auth_decodes(good.encode())
    assert not basic_auth_decodes(keygen._basic("browser:").encode())  # no password
    assert not basic_auth_decodes(keygen._basic(password).encode())  # no user
    assert not basic_auth_decodes(b"not-base64-at-all!!")
    assert find_hits(f"-H 'Authorization: Basic {good}'\n".encode())
    assert not find_hits(f"-H 'Authorization: Basic {keygen._basic('browser:')}'\n".encode())


def test_an_aws_secret_counts_beside_its_key_id_only() -> None:
    key_id = "ASIA" + keygen.draw("[A-Z0-9]{16}")
    secret = keygen.draw("[A-Za-z0-9/+]{38}") + "7k"
    assert [h.provider for h in find_hits(f"id: {key_id}\nsecret: {secret}\n".encode())]
    assert not find_hits(f"checksum: {secret}\n".encode())


@pytest.mark.parametrize("text, found", [
    ('value = os.getenv("api_token", "{v}")\n', True),  # a default beside its name
    ("curl --header 'Authorization: {v}'\n", True),  # a header with no scheme
    ("INVALID_API_KEY = '{v}'\n", False),  # the name says it is not real
    ("fake_token = '{v}'\n", False),
    ("API_KEY = '{v}!{v}'\n", False),  # a key's value holds only a key's alphabet
])
def test_generic_values_by_name_and_alphabet(text: str, found: bool) -> None:
    value = keygen.draw("[A-Za-z0-9]{30}") + "7k"
    assert bool(find_hits(text.format(v=value).encode())) is found, text


def test_a_bare_value_counts_in_notes_alone_on_its_line_not_in_code() -> None:
    value = keygen.draw("[A-Za-z0-9]{30}") + "7k"
    line = f"api_token = {value}\n".encode()
    assert find_hits(line, notes=True)
    assert not find_hits(line)  # in code a bare word is a variable
    assert not find_hits(f"[DEBUG] using api_token = {value}\n".encode(), notes=True)


def test_a_long_lower_case_random_value_with_few_digits_is_a_possible_secret() -> None:
    # [a-z0-9] draws put a digit in a quarter of the places; some draws hold fewer.
    letters = secrets.SystemRandom().sample("abcdefghijklmnopqrstuvwxyz", 26)
    groups = ["".join(letters[i : i + 6]) for i in range(0, 24, 6)]
    value = "".join(g + d for g, d in zip(groups, "4197", strict=True)) + "".join(letters[24:])
    assert find_hits(f"TRAVEL_API_KEY={value}\n".encode(), config_like=True)
    assert not find_hits(b"TRAVEL_API_KEY=thisisnotakeybutalongvariablename\n", config_like=True)


SHAPED = sorted({r for rules in RULES.near_by for r in rules if r.pattern}, key=lambda r: r.id)


def test_near_entries_name_their_provider_distinctly_or_carry_a_shape() -> None:
    unshaped = {r for rules in RULES.near_by for r in rules if not r.pattern}
    assert len(SHAPED) >= 100
    for rule in unshaped:  # a bare name must say who it is: five letters or more
        assert all(len(k) >= 5 for k in rule.keywords), rule.id
    for rule in SHAPED:
        assert all(len(k) >= 3 and k == k.lower() for k in rule.keywords), rule.id


@pytest.mark.parametrize("rule", SHAPED, ids=[r.id for r in SHAPED])
def test_a_value_drawn_from_each_shape_is_found_near_its_name(rule) -> None:  # type: ignore[no-untyped-def]
    name = rule.keywords[0].decode()
    found = False
    for _ in range(DRAWS):
        value = keygen.draw(_shape_of(rule))
        other = ("\nid: " + keygen.draw(rule.companion.split("(?:", 1)[1].rsplit(")(?!", 1)[0])
                 if rule.companion else "")  # the credential's other part, where it has one
        hits = find_hits(f"{name} key: {value}{other}\n".encode())
        found = found or any(h.start == len(name) + 6 for h in hits)
    assert found, rule.id


def test_a_two_part_credential_needs_its_other_part_nearby() -> None:
    # Duo's secret key authenticates only beside its integration key (DI + 18).
    secret = keygen.draw("[a-zA-Z0-9]{38}") + "7k"
    ikey = "DI" + keygen.draw("[A-Z0-9]{18}")
    both = f"DUO_IKEY={ikey}\nDUO_SKEY={secret}\n# duo\n".encode()
    assert any(h.provider == "Duo" for h in find_hits(b"# duo settings\n" + both))
    alone = f"# duo settings\nDUO_IKEY=DI123\nDUO_SKEY={secret}\n".encode()
    assert not any(h.provider == "Duo" for h in find_hits(alone))


@pytest.mark.parametrize("rule", [r for r in ALONE if r.anchored and r.report],
                         ids=[r.id for r in ALONE if r.anchored and r.report])
def test_a_rules_secret_stops_before_the_quote_or_space_after_it(rule) -> None:  # type: ignore[no-untyped-def]
    # The terminator a peer's pattern requires after a key (a quote, a space) is context:
    # inside the secret it would change the mask, the fingerprint and the length checks.
    for _ in range(DRAWS):
        match = rule.regex.search(f'"{keygen.draw(rule.pattern)}" '.encode())
        if match:
            end = rule.secret_span(match)[1]
            assert match.string[end - 1 : end] not in (b'"', b"'", b"`", b" "), rule.id


@pytest.mark.parametrize("first", ["+", "/"])
def test_a_base64_secret_may_start_with_plus_or_slash(first: str) -> None:
    # `\b` before a base64 value never matched one starting with + or / after a space.
    tableau = (first + keygen.draw("[A-Za-z0-9+/]{21}") + "==:"
               + keygen.draw("[A-Za-z0-9]{30}") + "7k")
    couchbase = first + keygen.draw("[A-Za-z0-9+/]{78}") + "7k"
    for text, secret in ((f"secret: {tableau}\n", tableau),
                         (f"couchbase api key = {couchbase}\n", couchbase)):
        assert secret in {h.secret for h in find_hits(text.encode(), config_like=True)}, text


@pytest.mark.parametrize("template", [
    'JIRA_API_TOKEN = "{}"', 'export CONFLUENCE_TOKEN="{}"', '  "atlassian_token": "{}",',
])
def test_an_atlassian_token_of_the_older_24_character_form_is_found_after_its_name(
        template: str) -> None:
    token = keygen.draw("[A-Za-z0-9]{22}") + "7k"
    (hit,) = find_hits(template.format(token).encode() + b"\n", config_like=True)
    assert (hit.secret, hit.provider, hit.confidence) == (token, "Atlassian", "medium")


def test_a_product_named_inside_a_word_names_no_atlassian_token() -> None:
    # A list of tool names: the comma passes for an assignment, the next word for a token.
    line = b'  "tools": "findPagesInConfluence,searchIssuesByLabelNames",\n'
    assert not find_hits(line, config_like=True)
