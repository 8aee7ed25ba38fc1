"""The composition root: ``create_app(settings)`` builds everything and owns its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from aiohttp import web
from pydantic import ValidationError

from bot.activity import IncomingActivity
from bot.auth import AuthError, RequestAuthenticator
from bot.connector import ConnectorClient
from bot.credentials import OutboundTokenProvider
from bot.delivery import start_delivery
from bot.people import PeopleResolver
from bot.settings import Settings
from bot.teams_handler import TeamsHandler
from dialogs.forms_model import FormCatalog
from dialogs.forums import ForumService
from dialogs.organisation import Organisation
from dialogs.service import CaseService
from dialogs.teams import TeamService
from storage.db import Database
from storage.migrate import upgrade

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
HANDLER = web.AppKey("handler", TeamsHandler)
AUTH = web.AppKey("auth", RequestAuthenticator)


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=_dumps)


async def messages(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _problem(413, f"body larger than {limit} bytes")
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        return _problem(413, f"body larger than {limit} bytes")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _problem(400, "body is not valid JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return _problem(400, "body is not a Bot Framework activity")
    try:
        await request.app[AUTH].authenticate(request.headers.get("Authorization"), payload)
    except AuthError as error:
        log.info("401 for %s: %s", request.remote, error.reason)
        return _problem(401, "unauthorized")
    try:
        activity = IncomingActivity.model_validate(payload)
    except ValidationError as error:
        return _problem(400, f"malformed activity: {error.error_count()} field error(s)")
    result = await request.app[HANDLER].on_activity(activity)
    if result.body is None:
        return web.Response(status=result.status)
    return web.json_response(result.body, status=result.status, dumps=_dumps)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(request.app[DATABASE].ping(), timeout=5)
    except Exception as error:  # any database failure means "not ready"
        log.warning("readiness check failed: %s", error)
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


@web.middleware
async def _never_500_for_input(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _problem(500, "internal error")


def create_app(settings: Settings, *, migrate: bool = True) -> web.Application:
    app = web.Application(middlewares=[_never_500_for_input], client_max_size=settings.max_body_bytes + 1024)
    app[SETTINGS] = settings
    catalog = FormCatalog.load()
    organisation = Organisation.load(settings.organisation_file)
    password = settings.microsoft_app_password.get_secret_value()
    app[AUTH] = RequestAuthenticator(
        app_id=settings.microsoft_app_id,
        app_password=password,
        app_type=settings.microsoft_app_type.value,
        tenant_id=settings.microsoft_app_tenant_id,
        openid_metadata_url=settings.openid_metadata_url,
    )

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if settings.development_mode:
            log.warning(
                "DEVELOPMENT MODE: MICROSOFT_APP_ID is empty, so requests to /api/messages are NOT authenticated "
                "and replies carry no token. Never expose this to a network."
            )
        database = Database(settings.database_url, pool_size=settings.database_pool_size)
        if migrate:
            await upgrade(database)
        database.start_background()
        tokens = OutboundTokenProvider(settings.microsoft_app_id, password, settings.microsoft_app_type.value,
                                       settings.microsoft_app_tenant_id)
        connector = ConnectorClient(tokens, timeout_seconds=settings.outbound_timeout_seconds)
        await connector.start()
        # Proactive posts, thread replies and card updates go through the persistent outbox.
        delivery = await start_delivery(database, connector)
        people = PeopleResolver(database, connector)
        forums = ForumService(
            database, catalog, organisation, admins=settings.bot_admins, longtext_max=settings.answer_max_length,
            followup_days=settings.followup_reminder_days, evaluation_notice_days=settings.evaluation_notice_days,
            resolver=people.resolve,
        )
        forums.on_queued = delivery.wake
        service = CaseService(database, catalog, organisation, longtext_max=settings.answer_max_length,
                              forums=forums)
        app[DATABASE] = database
        app[HANDLER] = TeamsHandler(service, connector, TeamService(database, admins=settings.bot_admins, on_installed=forums.team_installed,
                                                wake=delivery.wake), forums,
                                    people)
        pruner = asyncio.create_task(_prune_loop(database, timedelta(hours=settings.dedup_retention_hours)))
        reminders = asyncio.create_task(_reminder_loop(forums, delivery.worker_id, settings.reminder_poll_seconds))
        # Everything built at start-up lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise add pauses to turns under load.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await delivery.stop()
            for task in (pruner, reminders):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await connector.close()
            await tokens.close()
            await database.dispose()

    app.cleanup_ctx.append(lifetime)
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def _prune_loop(database: Database, retention: timedelta) -> None:
    while True:
        try:
            async with database.transaction() as repo:
                removed = await repo.prune_activities(retention)
            if removed:
                log.info("pruned %d processed activity ids", removed)
        except Exception:
            log.exception("pruning processed activity ids failed")
        await asyncio.sleep(3600)


async def _reminder_loop(forums: ForumService, worker_id: str, every: float) -> None:
    """Send due follow-up/evaluation reminders. Several processes may run this: each reminder is taken once."""
    while True:
        try:
            sent = await forums.run_reminders(worker=worker_id)
            if sent:
                log.info("sent %d reminder(s)", sent)
        except Exception:
            log.exception("sending reminders failed")
        await asyncio.sleep(every)
