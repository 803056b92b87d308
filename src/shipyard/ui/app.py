"""The web UI: server-rendered pages over the registry, protected by the API keys.

:func:`create_ui` builds a Starlette app meant to be mounted at ``/ui`` (``shipyard ui``
serves it alone, ``shipyard serve`` beside the model's API). Every page is rendered on the
server with Jinja2; the only scripts are the vendored htmx and uPlot and a small ``ui.js``
that draws the charts, all served from the package, and the Content-Security-Policy header
lets the browser load nothing from anywhere else.

A person logs in with an API key; the session lives in a signed, http-only, SameSite cookie
(:mod:`shipyard.ui.session`). A page asked for without a valid session redirects to the login
form; an action (every POST) without one, or without the session's CSRF token, is refused
with 403. Promotions and rollbacks call the registry exactly as ``shipyard models promote``
and ``rollback`` do, so they land in the same audit log, with the reason given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from shipyard.errors import DataError, ModelNotFoundError, ShipyardError
from shipyard.registry.store import DEFAULT_ALIAS, Registry
from shipyard.serving.keys import KeyStore
from shipyard.ui import views
from shipyard.ui.formatting import FILTERS
from shipyard.ui.session import (
    COOKIE_NAME,
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    SessionCodec,
    tokens_match,
)
from shipyard.ui.try_it import TryItService

__all__ = ["CONTENT_SECURITY_POLICY", "UISettings", "create_ui", "ui_routes"]

# Nothing but this server: scripts, styles, images, fetches and form posts. Inline styles are
# allowed because uPlot positions its legend and cursor with style attributes.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
)
# The evaluation report is a self-contained page of its own: inline style, inline images.
REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
)
# Room for an uploaded image in base64 (a try-it form); other forms are far smaller.
MAX_FORM_BYTES = 8 * 1024 * 1024
STATIC = Path(__file__).parent / "static"

Handler = Callable[[Request, Session], Awaitable[Response]]


@dataclass(frozen=True)
class UISettings:
    """How the UI behaves.

    Parameters
    ----------
    secure_cookie
        Send the session cookie over HTTPS only. Browsers treat ``http://127.0.0.1`` and
        ``http://localhost`` as secure, so this works locally; turn it off only behind a
        proxy that terminates TLS on another host name over plain HTTP.
    window_size
        Predictions per drift window on the monitoring page (``monitoring.window_size``).
    """

    secure_cookie: bool = True
    window_size: int = 1000


class _Pages:
    """The UI's request handlers, sharing the registry, the keys and the templates."""

    def __init__(
        self, registry: Registry, keys: KeyStore, codec: SessionCodec, settings: UISettings
    ) -> None:
        self.registry = registry
        self.keys = keys
        self.codec = codec
        self.settings = settings
        self.try_it = TryItService(registry)
        self.templates = Environment(
            loader=PackageLoader("shipyard.ui", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(FILTERS)

    # -- rendering ---------------------------------------------------------------------

    def render(
        self,
        request: Request,
        session: Session | None,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> Response:
        base = request.scope.get("root_path", "").rstrip("/")
        page = self.templates.get_template(template).render(
            base=base,
            session=session,
            csrf=session.csrf if session else "",
            csrf_field=CSRF_FIELD,
            path=request.url.path,
            **context,
        )
        return self._secured(HTMLResponse(page, status_code=status))

    def _secured(self, response: Response, policy: str = CONTENT_SECURITY_POLICY) -> Response:
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    def _set_cookie(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.codec.dump(session),
            max_age=self.codec.max_age,
            path=(request.scope.get("root_path", "").rstrip("/") or "") + "/",
            secure=self.settings.secure_cookie,
            httponly=True,
            samesite="strict",
        )

    # -- sessions ------------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        """Return the request's logged-in session, or ``None``."""
        session = self.codec.load(request.cookies.get(COOKIE_NAME))
        if session is None or not session.logged_in or not self.keys.knows(session.key_sha256):
            return None
        return session

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler: a valid session for every request, the CSRF token for POSTs."""

        async def endpoint(request: Request) -> Response:
            session = self.session(request)
            base = request.scope.get("root_path", "").rstrip("/")
            if session is None:
                if request.method != "GET":
                    return self.refuse(
                        request,
                        "You are not logged in, or your session ended (or its key was "
                        "revoked); log in again with an API key.",
                    )
                target = f"{base}/login?next={quote(request.url.path)}"
                if request.headers.get("hx-request"):
                    answer = Response(status_code=401, headers={"HX-Redirect": target})
                    return self._secured(answer)
                return self._secured(RedirectResponse(target, status_code=303))
            try:
                if request.method == "POST":
                    form = await read_form(request)
                    presented = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
                    if not tokens_match(session.csrf, presented):
                        return self.refuse(
                            request,
                            "This action carried no valid security (CSRF) token, so it was "
                            "refused. Reload the page and submit the form again.",
                        )
                return await handler(request, session)
            except ModelNotFoundError as error:
                return self.render(request, session, "error.html", 404, message=str(error))
            except ShipyardError as error:
                return self.render(request, session, "error.html", 400, message=str(error))

        return endpoint

    def refuse(self, request: Request, message: str) -> Response:
        return self.render(request, None, "error.html", 403, message=message)

    # -- login -----------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        pending = self.codec.load(request.cookies.get(COOKIE_NAME)) or Session.new()
        response = self.render(
            request, pending, "login.html", next=_local(request, request.query_params.get("next"))
        )
        self._set_cookie(request, response, pending)
        return response

    async def login(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except DataError as error:
            return self.refuse(request, str(error))
        pending = self.codec.load(request.cookies.get(COOKIE_NAME))
        target = _local(request, form.get("next"))
        if pending is None or not tokens_match(pending.csrf, form.get(CSRF_FIELD)):
            return self.refuse(
                request,
                "The login form's security token is missing or out of date; open the login "
                "page again and retry.",
            )
        key = await run_in_threadpool(self.keys.identify, form.get("api_key", "").strip())
        if key is None:
            response = self.render(
                request,
                pending,
                "login.html",
                401,
                next=target,
                error="That API key is not valid. Create one with 'shipyard keys create'.",
            )
            return response
        # A new session (and CSRF token) at login: a token seen before login is worth nothing.
        session = Session.new(key_id=key.id, key_sha256=key.sha256)
        response = self._secured(RedirectResponse(target, status_code=303))
        self._set_cookie(request, response, session)
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        base = request.scope.get("root_path", "").rstrip("/")
        response = self._secured(RedirectResponse(f"{base}/login", status_code=303))
        response.delete_cookie(COOKIE_NAME, path=(base or "") + "/")
        return response

    # -- pages -----------------------------------------------------------------------------

    async def models(self, request: Request, session: Session) -> Response:
        rows = await run_in_threadpool(views.models_overview, self.registry)
        return self.render(request, session, "models.html", models=rows)

    async def model(self, request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        overview = await run_in_threadpool(views.model_overview, self.registry, name)
        return self.render(
            request, session, "model.html", model=overview, notice=self._notice(request)
        )

    async def version(self, request: Request, session: Session) -> Response:
        name, number = request.path_params["name"], request.path_params["version"]
        detail = await run_in_threadpool(views.version_detail, self.registry, name, number)
        card = await run_in_threadpool(self._card, f"{name}:{number}")
        return self.render(request, session, "version.html", v=detail, card=card)

    def _card(self, reference: str) -> Any:
        from shipyard.pipeline.documents import card_for_version

        return card_for_version(self.registry, reference)

    async def report(self, request: Request, session: Session) -> Response:
        from shipyard.pipeline.documents import report_for_version

        name, number = request.path_params["name"], request.path_params["version"]
        _, path = await run_in_threadpool(report_for_version, self.registry, f"{name}:{number}")
        return self._secured(FileResponse(path, media_type="text/html"), REPORT_POLICY)

    async def compare(self, request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        versions = await run_in_threadpool(self.registry.versions, name)
        numbers = [version.version for version in versions]
        first = _int(request.query_params.get("first"), numbers[0])
        second = _int(request.query_params.get("second"), numbers[-1])
        comparison = await run_in_threadpool(
            views.compare_versions, self.registry, name, first, second
        )
        return self.render(
            request, session, "compare.html", c=comparison, numbers=numbers, name=name
        )

    async def monitoring(self, request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        number = request.query_params.get("version")
        series = await run_in_threadpool(
            views.monitoring_series,
            self.registry,
            name,
            _int(number, None),
            self.settings.window_size,
        )
        return self.render(request, session, "monitoring.html", m=series)

    async def events(self, request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        events = await run_in_threadpool(self.registry.events, name)
        return self.render(request, session, "events.html", name=name, events=events[::-1])

    # -- actions ---------------------------------------------------------------------------

    async def move_alias(self, request: Request, session: Session) -> Response:
        """Promote or roll back: first a confirmation page, then the registry's own call."""
        name = request.path_params["name"]
        action = request.path_params["action"]
        if action not in ("promote", "rollback"):
            return self.render(
                request, session, "error.html", 404, message=f"No action '{action}' here."
            )
        form: dict[str, str] = request.state.form
        alias = form.get("alias", DEFAULT_ALIAS).strip() or DEFAULT_ALIAS
        reason = form.get("reason", "").strip()
        override = form.get("override_fairness") == "on"
        number = _int(form.get("version"), None)
        problem = None
        if not reason:
            problem = "A reason is required: it is written to the audit log with the move."
        elif action == "promote" and number is None:
            problem = "Choose the version to promote."
        if problem is not None:
            overview = await run_in_threadpool(views.model_overview, self.registry, name)
            return self.render(request, session, "model.html", 422, model=overview, error=problem)
        if form.get("confirmed") != "yes":
            current = await run_in_threadpool(_holder, self.registry, name, alias)
            return self.render(
                request,
                session,
                "confirm.html",
                name=name,
                action=action,
                alias=alias,
                version=number,
                current=current,
                reason=reason,
                override=override,
            )
        actor = f"web UI, key {session.key_id}"
        if action == "promote":
            assert number is not None
            moved = await run_in_threadpool(
                lambda: self.registry.promote(
                    name, number, alias, f"{reason} ({actor})", override_fairness=override
                )
            )
        else:
            moved = await run_in_threadpool(
                self.registry.rollback, name, alias, f"{reason} ({actor})"
            )
        base = request.scope.get("root_path", "").rstrip("/")
        verb = "promoted to" if action == "promote" else "rolled back to"
        notice = f"{alias} {verb} {moved.reference}."
        return self._secured(
            RedirectResponse(
                f"{base}/models/{quote(name)}?notice={quote(notice)}", status_code=303
            )
        )

    def _notice(self, request: Request) -> str:
        return request.query_params.get("notice", "")[:200]

    # -- try it ----------------------------------------------------------------------------

    async def try_form(self, request: Request, session: Session) -> Response:
        name, number = request.path_params["name"], request.path_params["version"]
        form = await run_in_threadpool(self.try_it.form, name, number)
        return self.render(
            request, session, "try.html", name=name, version=number, form=form, values={}
        )

    async def try_submit(self, request: Request, session: Session) -> Response:
        name, number = request.path_params["name"], request.path_params["version"]
        values: dict[str, str] = request.state.form
        form = await run_in_threadpool(self.try_it.form, name, number)
        answer, error = None, None
        try:
            answer = await run_in_threadpool(self.try_it.answer, name, number, values)
        except DataError as problem:
            error = str(problem)
        context = {
            "name": name,
            "version": number,
            "form": form,
            "values": values,
            "answer": answer,
            "error": error,
        }
        status = 200 if error is None else 422
        if request.headers.get("hx-request"):
            return self.render(request, session, "_answer.html", status, **context)
        return self.render(request, session, "try.html", status, **context)

    async def root(self, request: Request) -> Response:
        base = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(f"{base}/", status_code=307)


def _holder(registry: Registry, name: str, alias: str) -> int | None:
    try:
        return registry.resolve(f"{name}@{alias}").version
    except ModelNotFoundError:
        registry.versions(name)  # an unknown model raises here, with the known names
        return None


def _int(text: str | None, default: Any) -> Any:
    try:
        return int(text) if text not in (None, "") else default
    except ValueError:
        return default


def _local(request: Request, target: str | None) -> str:
    """Return ``target`` when it is a path of this UI, else the UI's home (no open redirect)."""
    base = request.scope.get("root_path", "").rstrip("/")
    if target and target.startswith(f"{base}/") and not target.startswith("//"):
        return target
    return f"{base}/"


async def read_form(request: Request) -> dict[str, str]:
    """Read an url-encoded form body (at most 256 KiB); the last value of a repeated field."""
    if hasattr(request.state, "form"):
        cached: dict[str, str] = request.state.form
        return cached
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise DataError(f"The form is larger than {MAX_FORM_BYTES // 1024} KiB.")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    form = {key: values[-1] for key, values in fields.items()}
    request.state.form = form
    return form


def ui_routes(
    registry: Registry,
    keys: KeyStore,
    secret: bytes,
    settings: UISettings | None = None,
) -> list[BaseRoute]:
    """Return the UI's routes, to mount at ``/ui`` in any Starlette app."""
    pages = _Pages(registry, keys, SessionCodec(secret), settings or UISettings())
    page = pages.page
    model = "/models/{name}"
    version = model + "/versions/{version:int}"
    return [
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", page(pages.logout), methods=["POST"]),
        Route("/", page(pages.models), methods=["GET"]),
        Route(model, page(pages.model), methods=["GET"]),
        Route(model + "/compare", page(pages.compare), methods=["GET"]),
        Route(model + "/monitoring", page(pages.monitoring), methods=["GET"]),
        Route(model + "/events", page(pages.events), methods=["GET"]),
        Route(model + "/{action:str}", page(pages.move_alias), methods=["POST"]),
        Route(version, page(pages.version), methods=["GET"]),
        Route(version + "/report", page(pages.report), methods=["GET"]),
        Route(version + "/try", page(pages.try_form), methods=["GET"]),
        Route(version + "/try", page(pages.try_submit), methods=["POST"]),
    ]


def create_ui(
    registry: Registry,
    keys: KeyStore,
    secret: bytes,
    settings: UISettings | None = None,
) -> Starlette:
    """Build the app ``shipyard ui`` serves: the pages under ``/ui``, ``/`` redirecting there."""

    async def home(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    async def health(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Mount("/ui", routes=ui_routes(registry, keys, secret, settings)),
        ]
    )
