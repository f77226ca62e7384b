"""The site server: loopback only, several at once, clean shutdown."""

import socket
import urllib.request

import pytest

pytest.importorskip("flask", reason="the web extra (flask) is not installed")

from worldmodels.envs.web import create_app  # noqa: E402
from worldmodels.envs.web.server import serve  # noqa: E402


def _non_loopback_address():
    """This machine's outward address (a UDP connect sends nothing), or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def test_serves_several_sites_on_loopback_only_and_shuts_down(tmp_path):
    shop = create_app("shop", tmp_path / "s.db", 0)
    forum = create_app("forum", tmp_path / "f.db", 0)
    with serve(shop) as a, serve(forum) as b:
        assert a.host == b.host == "127.0.0.1" and a.port != b.port
        assert a._server.socket.getsockname()[0] == "127.0.0.1"
        assert a.url == f"http://127.0.0.1:{a.port}"
        with urllib.request.urlopen(a.url + "/product/1", timeout=5) as r:
            assert r.status == 200 and b"Add to cart" in r.read()
        with urllib.request.urlopen(b.url + "/t/1", timeout=5) as r:
            assert r.status == 200 and b"Score" in r.read()
        other = _non_loopback_address()
        if other is not None:
            with pytest.raises(OSError):
                socket.create_connection((other, a.port), timeout=2).close()
    assert not a.running and not b.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", a.port), timeout=2).close()
    a.shutdown()  # idempotent


def test_bad_port_is_a_clear_error(tmp_path):
    app = create_app("admin", tmp_path / "a.db", 0)
    with pytest.raises(ValueError, match="port must be an int"):
        serve(app, port=70000)
