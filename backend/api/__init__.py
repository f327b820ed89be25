"""HTTP: `create_app` (app.py) including the routers, whose thin routes parse a request and make one
call into the `Backend`: Label Studio's ML-backend protocol (protocol_routes.py) and ours
(project_routes.py), the JSON answers they assemble (answers.py); request guards and body parsing
(httpio.py), the OpenAPI schema pieces (schema.py) and the webhook dispatcher (webhooks.py). Nothing
here trains or talks to Label Studio itself."""
