// The API docs at /docs: Swagger UI from the service's own files (no CDN, no inline script).
"use strict";
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
