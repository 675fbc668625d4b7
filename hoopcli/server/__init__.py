"""The hoop server: FastAPI app, storage, identity, credential broker. Needs the `server` extra."""
