// Starts Swagger UI on /docs. A file of its own, not an inline script, so the page's
// Content-Security-Policy can forbid inline code. Keys typed into "Authorize" are kept in
// the page's memory only (persistAuthorization off), never in localStorage.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.openapi,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    persistAuthorization: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
