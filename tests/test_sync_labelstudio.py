"""Label Studio process, project set-up and SSRF subnet list against a real Label Studio."""

from __future__ import annotations

import ipaddress

import pytest
import requests

from lsproto.config import build_label_config, parse_label_config, parse_labels
from lsproto.tokens import auth_header, exchange_personal_access_token
from sync.labelstudio import LabelStudioServer, LabelStudioStartError
from sync.netutil import banned_subnets, free_port, subnet_of_host
from sync.project import ensure_project

pytestmark = pytest.mark.labelstudio


def _contains(nets, ip):
    return any(ipaddress.ip_address(ip) in ipaddress.ip_network(n) for n in nets)


def test_banned_subnets_exclude_exactly_the_backend_subnet():
    nets = banned_subnets(["127.0.0.0/8"])
    v4 = [ipaddress.ip_network(n) for n in nets if ipaddress.ip_network(n).version == 4]
    v6 = [ipaddress.ip_network(n) for n in nets if ipaddress.ip_network(n).version == 6]
    # the complement of 127.0.0.0/8 in IPv4 plus all of IPv6, no overlap
    assert sum(n.num_addresses for n in v4) == 2**32 - 2**24
    assert v6 == [ipaddress.ip_network("::/0")]
    for a in v4:
        assert not a.overlaps(ipaddress.ip_network("127.0.0.0/8"))
    for ip in ("127.0.0.1", "127.255.255.254"):
        assert not _contains(nets, ip)
    for ip in (
        "126.255.255.255",
        "128.0.0.0",
        "10.0.0.1",
        "192.168.1.1",
        "8.8.8.8",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "::ffff:127.0.0.1",
        "fe80::1",
    ):
        assert _contains(nets, ip), ip


def test_banned_subnets_single_private_host_and_ipv6():
    nets = banned_subnets([subnet_of_host("10.1.2.3")])
    assert not _contains(nets, "10.1.2.3")
    assert _contains(nets, "10.1.2.4") and _contains(nets, "127.0.0.1")
    assert subnet_of_host("127.0.0.1") == "127.0.0.0/8"
    nets6 = banned_subnets([subnet_of_host("::1")])
    assert not _contains(nets6, "::1") and _contains(nets6, "::2") and _contains(nets6, "127.0.0.1")


def test_label_config_and_labels():
    config = build_label_config(["forest", "sea & sky", 'say "hi"'])
    assert '<Image name="image" value="$image"/>' in config
    assert list(parse_label_config(config).labels) == ["forest", "sea & sky", 'say "hi"']
    assert parse_labels(" a, b ,c,") == ["a", "b", "c"]
    with pytest.raises(ValueError):
        parse_labels("a,a")
    with pytest.raises(ValueError):
        parse_labels("only")


def test_label_studio_is_up_with_legacy_token(label_studio):
    assert requests.get(f"{label_studio.url}/health", timeout=5).status_code == 200
    who = requests.get(f"{label_studio.url}/api/current-user/whoami", headers=label_studio.headers, timeout=10)
    assert who.status_code == 200 and who.json()["email"] == label_studio.username
    bad = requests.get(f"{label_studio.url}/api/projects", headers={"Authorization": "Token nope-nope"}, timeout=10)
    assert bad.status_code == 401
    assert (label_studio.data_dir / "label_studio.sqlite3").exists()


def test_ensure_project_is_idempotent_and_has_labels(label_studio):
    client = label_studio.client()
    labels = ["buildings", "forest", "sea"]
    first = ensure_project(client, "idempotent-project", labels)
    second = ensure_project(client, "idempotent-project", labels)
    assert first.id == second.id
    same_title = [p for p in client.projects.list() if p.title == "idempotent-project"]
    assert len(same_title) == 1
    project = client.projects.get(id=first.id)
    assert list(parse_label_config(project.label_config).labels) == labels
    assert project.evaluate_predictions_automatically is False and project.show_collab_predictions is True
    assert str(getattr(project.sampling, "value", project.sampling)) == "Uncertainty sampling"
    assert project.show_collab_predictions is True
    # new labels replace the config of the same project
    third = ensure_project(client, "idempotent-project", labels + ["street"])
    assert third.id == first.id
    assert list(parse_label_config(client.projects.get(id=first.id).label_config).labels) == labels + ["street"]


def test_personal_access_token_downloads_an_upload(label_studio, shared_data):
    """A PAT is exchanged at /api/token/refresh/ for an access JWT that reads /data/upload/..."""
    from sync.upload import upload_files

    client = label_studio.client()
    project = ensure_project(client, "pat-project", ["a", "b"])
    image = next((shared_data / "data" / "intel-scenes" / "train" / "forest").glob("*.jpg"))
    task_ids = upload_files(client, project.id, [image], progress=False)
    task = client.tasks.get(id=task_ids[0])
    path = task.data["image"]
    assert path.startswith("/data/upload/")
    for pat in (label_studio.personal_access_token(), label_studio.new_user_with_pat()[1]):
        assert pat.count(".") == 2  # a JWT (refresh token)
        access, _ = exchange_personal_access_token(label_studio.url, pat)
        got = requests.get(label_studio.url + path, headers={"Authorization": f"Bearer {access}"}, timeout=10)
        assert got.status_code == 200 and got.content == image.read_bytes()
        assert auth_header(access)["Authorization"] == f"Bearer {access}"
    assert label_studio.personal_access_token() == label_studio.personal_access_token()  # cached
    legacy = requests.get(label_studio.url + path, headers=label_studio.headers, timeout=10)
    assert legacy.status_code == 200 and legacy.content == image.read_bytes()
    anonymous = requests.get(label_studio.url + path, timeout=10, allow_redirects=False)
    assert anonymous.status_code != 200 or anonymous.content != image.read_bytes()


def test_start_failure_reports_log_tail(tmp_path, label_studio):
    # the port of the running instance is taken: a clear error, no hang
    port = int(label_studio.url.rsplit(":", 1)[1])
    with pytest.raises(LabelStudioStartError, match="already in use"):
        LabelStudioServer(tmp_path / "ls", port, token="x" * 20).start()
    # not healthy in time: the error names the timeout and carries the log tail, nothing survives
    server = LabelStudioServer(tmp_path / "ls2", free_port(), token="x" * 20, startup_timeout=2)
    with pytest.raises(LabelStudioStartError, match="not healthy after 2 s.*Last log lines"):
        server.start()
    assert not server.alive()
