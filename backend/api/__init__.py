"""HTTP: `create_app` (app.py) with thin routes that parse a request and make one call into the
`Backend`; request guards and body parsing (httpio.py), the OpenAPI schema pieces (schema.py) and the
webhook dispatcher (webhooks.py). Nothing here trains or talks to Label Studio itself."""
