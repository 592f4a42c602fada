// Starts Swagger UI on /docs from this server's own files (no CDN, no inline script: the page's
// Content-Security-Policy allows scripts from this origin only). validatorUrl null: no outside call.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
  });
});
