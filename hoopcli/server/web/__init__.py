"""The web console: server-rendered pages (Jinja2) for auditors and approvers, signed in with
the same identity provider (authorization code flow with PKCE)."""
