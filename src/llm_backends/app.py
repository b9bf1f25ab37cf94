"""Assembles the ASGI app: Admin API, health, and the gateway, over one store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from llm_backends.admin import audit as audit_routes
from llm_backends.admin import feed, health
from llm_backends.admin import routes as admin_routes
from llm_backends.admin import status as admin_status
from llm_backends.admin import tokens as token_routes
from llm_backends.admin.auth import Authenticator
from llm_backends.admin.docs import install_docs
from llm_backends.admin.errors import install_error_handlers, validation_error_schema
from llm_backends.gateway import components as gateway_components
from llm_backends.gateway import install_gateway, start_gateway
from llm_backends.gateway.fastpath import FastPathAPI
from llm_backends.limits import BodySizeLimit
from llm_backends.settings import Settings
from llm_backends.shutdown import Drain
from llm_backends.store.crypto import SecretBox
from llm_backends.store.db import engine_from_settings, session_factory
from llm_backends.store.events import ConfigChanges
from llm_backends.store.notify import start_notifier
from llm_backends.store.retention import start_audit_pruner
from llm_backends.ui import install_ui


def create_app(settings: Settings | None = None) -> FastPathAPI:
    """The whole server. Migrations are applied by `llm-backends serve` before this starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = engine_from_settings(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.authenticator = Authenticator(app.state.sessions, settings.admin_api_token)
        app.state.config_changes = ConfigChanges()
        app.state.secret_box = SecretBox(settings.secret_key, settings.secret_key_file)
        # One router for the gateway, over the store; Admin API writes invalidate its cache.
        app.state.gateway = start_gateway(
            settings, app.state.sessions, app.state.authenticator, app.state.config_changes
        )
        # Other processes' writes (NOTIFY + version poll) into config_changes; the feed.
        app.state.change_feed = feed.ChangeFeed(app.state.sessions, app.state.config_changes)
        feed.export_held_polls(app.state.change_feed, app.state.gateway.metrics.registry)
        notifier = start_notifier(app.state.sessions, app.state.config_changes, settings=settings)
        release = feed.release_on_shutdown_signal(app.state.change_feed)
        pruner = await start_audit_pruner(app.state.sessions, settings.audit_retention_days)
        try:
            yield
        finally:
            release()
            if pruner is not None:
                await pruner.stop()
            app.state.change_feed.close()
            await notifier.stop()
            await app.state.gateway.close()
            await engine.dispose()

    app = FastPathAPI(
        title="llm-backends",
        version="0.1.0",
        summary="Per-model routing of LLM requests to self-hosted inference servers.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.drain = Drain()  # set by the server on SIGTERM/SIGINT; /ready reads it
    install_error_handlers(app)
    app.include_router(health.router)
    install_ui(app)  # before the Admin API: its `/{backend_id}` would take /timeseries
    app.include_router(admin_status.router)  # before admin_routes: /status is not an {id}
    app.include_router(feed.router)  # before admin_routes: its /{backend_id} would take "changes"
    app.include_router(admin_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(token_routes.router)
    install_docs(app)
    install_gateway(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    _use_string_validation_errors(app)
    return app


def _use_string_validation_errors(app: FastAPI) -> None:
    """Document the 422 body we actually send (`detail` is a string naming the fields), and
    the gateway's request and response schemas (its routes parse their bodies themselves)."""
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_schema()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            if "HTTPValidationError" in components:
                components["HTTPValidationError"] = validation_error_schema()
            components.update(gateway_components())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
