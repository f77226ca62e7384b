"""The browser environment: a local site in the system Chromium through Playwright's sync API,
observed as WebArena accessibility trees (:mod:`.axtree`), driven by WebArena's action grammar
(:mod:`.actions`).

    env = WebEnv()                                   # launches Chromium (one per thread)
    obs = env.reset("shop", seed=0, task="cheapest")
    obs, info = env.step("click [42]")              # info["valid"], info["error"], ...
    env.close()

Viewport 1280x2048 CSS px (RLVR-World's agent), device scale 1. Each ``reset`` reseeds the
site's SQLite file and opens the start URL in a fresh browser context (no cookies carried
over). Playwright's sync API is bound to the thread that started it, so parallel workers each
own a ``WebEnv`` in their own thread (:func:`worldmodels.envs.web.agents.run_parallel`).
Playwright cannot download browsers here: Chromium is taken from ``$WM_CHROMIUM`` or ``PATH``
(``chromium`` / ``chromium-browser``), see :func:`find_chromium`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from . import create_app
from .actions import Action, ActionError, parse_action
from .axtree import observation_text
from .server import serve
from .tasks import make_task

__all__ = ["find_chromium", "WebEnv", "TEXT_INPUT_ROLES", "VIEWPORT"]

VIEWPORT = {"width": 1280, "height": 2048}
#: Roles that accept ``type`` (anything else, e.g. a link or button, is an invalid target).
TEXT_INPUT_ROLES = frozenset({"textbox", "searchbox", "combobox", "spinbutton"})
_BOUNDS_JS = """function(...els) { return els.map(function(el) {
  if (el.nodeType == 3) { var r = document.createRange(); r.selectNode(el);
    var b = r.getBoundingClientRect().toJSON(); r.detach(); return b; }
  return el.getBoundingClientRect ? el.getBoundingClientRect().toJSON() : null; }); }"""
INSTALL_HINT = ("no Chromium found: install Debian's chromium (apt-get install chromium) or set "
                "WM_CHROMIUM to a Chromium/Chrome executable; Playwright cannot download "
                "browsers here")


def find_chromium() -> str:
    """Path of the Chromium to launch: ``$WM_CHROMIUM`` if set (must exist), else ``chromium``
    or ``chromium-browser`` on PATH. RuntimeError with :data:`INSTALL_HINT` when none."""
    env = os.environ.get("WM_CHROMIUM")
    if env:
        if not Path(env).is_file():
            raise RuntimeError(f"WM_CHROMIUM={env!r} is not a file; {INSTALL_HINT}")
        return env
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(INSTALL_HINT)


def _sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise ImportError("the browser environment needs Playwright: pip install -e '.[browser]' "
                          "(or pip install playwright)") from e
    return sync_playwright


class WebEnv:
    """One Chromium, one site server per site used, one page at a time.

    ``settle_s``: seconds waited after a mouse/keyboard action before waiting for the page's
    ``load`` state (lets a form submission start its navigation). ``webarena_bug``: reproduce
    WebArena's viewport-ratio expression (:func:`.axtree.viewport_ratio`). ``ax_ids``: show
    Chromium's raw AX node ids as WebArena does (not reproducible between runs; default: tree
    pre-order ranks, :func:`.axtree.renumber`). ``workdir``: where
    the sites' SQLite files live (a temporary directory by default).
    """

    def __init__(self, chromium: str | None = None, settle_s: float = 0.1,
                 webarena_bug: bool = False, workdir: str | None = None,
                 ax_ids: bool = False):
        executable = chromium or find_chromium()
        self._pw = _sync_playwright()().start()
        try:
            self._browser = self._pw.chromium.launch(executable_path=executable, headless=True)
        except Exception:
            self._pw.stop()
            raise
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="wm-web-")
        self.workdir = Path(workdir or self._tmp.name)
        self.settle_s, self.webarena_bug, self.ax_ids = settle_s, webarena_bug, ax_ids
        self._apps: dict = {}
        self._context = self.page = self._cdp = None
        self.site = self.task = self.server = None
        self.info: dict = {}
        self.observation = ""

    # ---- episode --------------------------------------------------------------------------
    def reset(self, site: str, seed: int = 0, task: str | None = None) -> str:
        """Reseed ``site``'s database with ``seed``, draw task family ``task`` (``self.task``,
        None for no task) and open the site's home page in a fresh context; the observation."""
        if site not in self._apps:
            db = self.workdir / f"{site}.sqlite"
            app = create_app(site, db, seed)
            self._apps[site] = (app, serve(app), db)
        app, self.server, db = self._apps[site]
        app.reset(seed)
        self.site, self.db_path = site, db
        self.task = make_task(site, task, db, seed) if task else None
        if self._context is not None:
            self._context.close()
        self._context = self._browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        self.page = self._context.new_page()
        self._cdp = self._context.new_cdp_session(self.page)
        self.page.goto(self.server.url + "/", wait_until="load")
        return self._observe()

    def _observe(self) -> str:
        nodes = self._cdp.send("Accessibility.getFullAXTree", {})["nodes"]
        for _ in range(20):  # the root is aria-busy while the document still loads
            if not any(p.get("name") == "busy" and (p.get("value") or {}).get("value")
                       for p in nodes[0].get("properties", [])):
                break
            time.sleep(0.05)
            nodes = self._cdp.send("Accessibility.getFullAXTree", {})["nodes"]
        bounds = self._bounds(nodes)
        text, info = observation_text(nodes, bounds, [self.page.title()], VIEWPORT["width"],
                                      VIEWPORT["height"], self.webarena_bug, self.ax_ids)
        self.observation, self.info = text, info
        return text

    def _bounds(self, nodes: list[dict]) -> dict:
        """nodeId -> client rect ``(x, y, w, h)`` or None, as WebArena's per-node
        ``getBoundingClientRect`` (text nodes: a Range) but with one ``callFunctionOn`` over all
        resolved nodes instead of one per node (same values, half the CDP round trips)."""
        bounds: dict = {}
        resolved = []
        for n in nodes:
            if "backendDOMNodeId" not in n or n["nodeId"] in bounds:
                continue
            bounds[n["nodeId"]] = None  # no layout object / detached: no bounds (WebArena)
            try:
                obj = self._cdp.send("DOM.resolveNode", {"backendNodeId": n["backendDOMNodeId"]})
                resolved.append((n["nodeId"], obj["object"]["objectId"]))
            except Exception:
                continue
        if resolved:
            rects = self._cdp.send("Runtime.callFunctionOn", {
                "objectId": resolved[0][1], "functionDeclaration": _BOUNDS_JS,
                "arguments": [{"objectId": o} for _, o in resolved],
                "returnByValue": True})["result"]["value"]
            for (nid, _), r in zip(resolved, rects, strict=True):
                if r is not None:
                    bounds[nid] = (r["x"], r["y"], r["width"], r["height"])
        return bounds

    # ---- actions --------------------------------------------------------------------------
    def check_action(self, action: str) -> Action | ActionError:
        """Parse ``action`` and check it against the current observation (ids, roles, goto
        origin) without executing it. Never raises."""
        if self.page is None:
            raise RuntimeError("WebEnv.step/check_action before reset(site, seed, task)")
        a = parse_action(action)
        if isinstance(a, ActionError):
            return a
        if a.element_id is not None:
            entry = self.info.get(a.element_id)
            if entry is None:
                return ActionError(f"unknown id {a.element_id}: not in the current observation",
                                   action)
            if not entry.get("bounds") or not entry["bounds"][2] or not entry["bounds"][3]:
                return ActionError(f"element [{a.element_id}] has no on-screen box", action)
            role = entry["text"].split(" ", 2)[1]
            if a.verb == "type" and role not in TEXT_INPUT_ROLES:
                return ActionError(f"cannot type into a {role} ([{a.element_id}] is not a text "
                                   f"field)", action)
        if a.verb == "goto":
            want = urlsplit(self.server.url)
            try:
                got = urlsplit(a.text.strip())
                origin = (got.scheme, got.hostname, got.port)
            except ValueError:  # e.g. a port beyond 65535
                origin = None
            if origin != (want.scheme, want.hostname, want.port):
                return ActionError(f"goto is limited to the site's own origin {self.server.url}",
                                   action)
        return a

    def step(self, action: str) -> tuple[str, dict]:
        """Execute one action string; returns ``(observation, info)`` with ``info`` keys
        ``valid`` (bool), ``error`` (why not, or None), ``url``, ``done`` (a ``stop``) and
        ``answer`` (the stop answer). An invalid action executes nothing and returns the
        unchanged observation."""
        a = self.check_action(action)
        if isinstance(a, ActionError):
            return self.observation, {"valid": False, "error": a.message, "url": self.page.url,
                                      "done": False, "answer": None}
        if a.verb == "stop":
            return self.observation, {"valid": True, "error": None, "url": self.page.url,
                                      "done": True, "answer": a.text}
        try:
            self._execute(a)
        except Exception as e:  # e.g. an unknown key name in press: nothing was dispatched
            return self.observation, {"valid": False, "error": f"{a.verb} failed: "
                                      f"{str(e).splitlines()[0][:200]}", "url": self.page.url,
                                      "done": False, "answer": None}
        return self._observe(), {"valid": True, "error": None, "url": self.page.url,
                                 "done": False, "answer": None}

    def _execute(self, a: Action) -> None:
        page = self.page
        if a.element_id is not None:
            x, y, w, h = self.info[a.element_id]["bounds"]
            cx, cy = x + w / 2, y + h / 2  # WebArena: centre as a viewport fraction, rescaled
            if a.verb == "hover":
                page.mouse.move(cx, cy)
            else:
                page.mouse.click(cx, cy)
                if a.verb == "type":
                    page.keyboard.type(a.text + ("\n" if a.enter else ""))
        elif a.verb == "press":
            page.keyboard.press(a.text)
        elif a.verb == "scroll":
            sign = "+" if a.text == "down" else "-"
            page.evaluate("(document.scrollingElement || document.body).scrollTop = "
                          f"(document.scrollingElement || document.body).scrollTop {sign} "
                          "window.innerHeight;")
        elif a.verb == "goto":
            page.goto(a.text.strip(), wait_until="load")
        elif a.verb == "go_back":
            page.go_back(wait_until="load")
        elif a.verb == "go_forward":
            page.go_forward(wait_until="load")
        time.sleep(self.settle_s)
        page.wait_for_load_state("load")
        page.wait_for_function("document.readyState === 'complete'")

    def success(self) -> bool:
        """Whether the current task's check holds on the site's database (False: no task)."""
        return bool(self.task and self.task.success(self.db_path))

    def close(self) -> None:
        """Close the browser, Playwright and the servers (idempotent)."""
        for _app, server, _db in self._apps.values():
            server.shutdown()
        self._apps.clear()
        if self._pw is not None:
            self._browser.close()
            self._pw.stop()
            self._pw = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> WebEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
