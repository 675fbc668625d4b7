"""The built-in development identity provider (used only when no `oidc.issuer` is configured).

Development-grade: see docs/deployment.md. keys.py (signing keys, JWKS, mint_id_token) is shared
with the server's token verification; the device flow, token endpoint and pages live beside it.
"""
