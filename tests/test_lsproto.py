"""The shared Label Studio rules (lsproto): labeling configs, result shapes, token kinds, URL kinds,
project references. Pure functions, no server; the same rules run against a real Label Studio in
test_sync_labelstudio.py and test_backend_labelstudio.py."""

from __future__ import annotations

import base64
import json

import pytest

from lsproto.config import LabelConfigError, build_label_config, parse_label_config, parse_labels
from lsproto.project import ProjectIdError, parse_project
from lsproto.results import choice_result, error_prediction, newest_label, prediction, result_label
from lsproto.tokens import ACCESS, LEGACY, NONE, PAT, LSAuth, TokenError, auth_header, token_kind
from lsproto.urls import CLOUD, HTTP, LOCAL_FILES, OTHER, UPLOAD, resolve, same_origin, url_kind


def jwt(payload: dict) -> str:
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")  # noqa: E731
    return f"{part({'alg': 'HS256'})}.{part(payload)}.c2ln"


# -- labeling configs ----------------------------------------------------------------------------


def test_aliases_are_the_labels_and_values_otherwise():
    cfg = parse_label_config(
        '<View><Image name="img" value="$photo"/><Choices name="cls" toName="img">'
        '<Choice value="Sea water" alias="sea"/><Choice value="forest"/></Choices></View>'
    )
    assert (cfg.from_name, cfg.to_name, cfg.data_key, cfg.labels) == ("cls", "img", "photo", ("sea", "forest"))


def test_unicode_and_spaced_labels_round_trip_through_the_config_tasveer_writes():
    labels = ["森林", "mer & ciel", 'say "hi"', "  street  "]
    cfg = parse_label_config(build_label_config(labels))
    assert cfg.labels == ("森林", "mer & ciel", 'say "hi"', "street")
    assert (cfg.from_name, cfg.to_name, cfg.data_key) == ("choice", "image", "image")


def test_two_choices_on_the_image_are_refused_but_one_on_text_is_ignored():
    two = (
        '<View><Image name="i" value="$image"/><Choices name="a" toName="i"><Choice value="x"/>'
        '<Choice value="y"/></Choices><Choices name="b" toName="i"><Choice value="z"/><Choice value="w"/>'
        "</Choices></View>"
    )
    with pytest.raises(LabelConfigError, match="several <Choices>.*a, b"):
        parse_label_config(two)
    mixed = (
        '<View><Image name="i" value="$image"/><Text name="t" value="$text"/>'
        '<Choices name="about_text" toName="t"><Choice value="p"/><Choice value="q"/></Choices>'
        '<Choices name="about_image" toName="i"><Choice value="x"/><Choice value="y"/></Choices></View>'
    )
    assert parse_label_config(mixed).from_name == "about_image"


@pytest.mark.parametrize(
    "xml, message",
    [
        ('<View><Image name="i" value="$image"/></View>', "no <Choices>"),
        (
            '<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/><Choice value="b"/>'
            "</Choices></View>",
            "no <Image>",
        ),
        (
            '<View><Image name="i" value="$image"/><Choices name="c" toName="i"><Choice value="a"/></Choices></View>',
            "at least two",
        ),
        (
            '<View><Image name="i" value="$image"/><Choices name="c" toName="i"><Choice value="a"/><Choice value="a"/>'
            "</Choices></View>",
            "appears twice",
        ),
        (
            '<View><Image name="i" value="http://x/y.jpg"/><Choices name="c" toName="i"><Choice value="a"/>'
            '<Choice value="b"/></Choices></View>',
            "must reference task data",
        ),
        ("<View>", "not valid XML"),
        ("", "empty"),
        ('<!DOCTYPE x [<!ENTITY e "boom">]><View>&e;</View>', "DOCTYPE"),
    ],
)
def test_configs_tasveer_cannot_serve_say_why(xml, message):
    with pytest.raises(LabelConfigError, match=message):
        parse_label_config(xml)


def test_parse_labels():
    assert parse_labels(" a, b ,c,") == ["a", "b", "c"]
    for bad in ("a,a", "only", ""):
        with pytest.raises(LabelConfigError):
            parse_labels(bad)


# -- result shapes -------------------------------------------------------------------------------


def test_prediction_shape_clips_the_score_and_carries_the_cluster():
    cfg = parse_label_config(build_label_config(["a", "b"]))
    p = prediction(cfg, "b", 1.7, "v0003", cluster=4)
    assert p == {"result": choice_result("choice", "image", "b"), "score": 1.0, "model_version": "v0003", "cluster": 4}
    assert p["result"] == [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": ["b"]}}]
    assert prediction(cfg, "a", -0.2, "v1")["score"] == 0.0 and "cluster" not in prediction(cfg, "a", 0.5, "v1")
    assert error_prediction("v1", "task 3: gone") == {
        "result": [],
        "score": 0.0,
        "model_version": "v1",
        "error": "task 3: gone",
    }


def test_newest_usable_annotation_wins_and_skipped_ones_do_not_count():
    cfg = parse_label_config(build_label_config(["a", "b", "c"]))
    task = {
        "annotations": [
            {"id": 1, "updated_at": "2026-01-01T00:00:00Z", "result": choice_result("choice", "image", "a")},
            {"id": 2, "updated_at": "2026-03-01T00:00:00Z", "result": choice_result("choice", "image", "b")},
            {"id": 3, "updated_at": "2026-05-01T00:00:00Z", "was_cancelled": True, "result": []},
            {"id": 4, "updated_at": "2026-06-01T00:00:00Z", "result": choice_result("other", "image", "c")},
        ]
    }
    assert newest_label(task, cfg) == (2, "b")
    assert newest_label({"annotations": [task["annotations"][2]]}, cfg) is None
    assert result_label([{"type": "choices", "from_name": "choice", "value": {"choices": []}}], "choice") is None
    assert result_label("not a list", "choice") is None


# -- tokens --------------------------------------------------------------------------------------


def test_token_kinds_and_headers():
    legacy = "0123456789abcdef0123456789abcdef01234567"
    pat, access = jwt({"token_type": "refresh", "exp": 2e9}), jwt({"token_type": "access", "exp": 2e9})
    assert [token_kind(t) for t in (legacy, pat, access, None, "")] == [LEGACY, PAT, ACCESS, NONE, NONE]
    assert auth_header(legacy) == {"Authorization": f"Token {legacy}"}
    assert auth_header(access) == {"Authorization": f"Bearer {access}"}
    with pytest.raises(TokenError, match="exchanged"):
        auth_header(pat)
    assert LSAuth("http://ls:8080/", None).headers() == {} and LSAuth("http://ls:8080", legacy).refresh() is False


def test_a_pat_that_cannot_be_exchanged_is_a_readable_error():
    # nothing listens on port 9 of loopback: the exchange fails at once, without a traceback's noise
    auth = LSAuth("http://127.0.0.1:9", jwt({"token_type": "refresh"}))
    with pytest.raises(TokenError, match="cannot reach http://127.0.0.1:9/api/token/refresh/"):
        auth.headers()


# -- URLs and project references -----------------------------------------------------------------


def test_url_kinds_and_resolution():
    host = "http://127.0.0.1:8080"
    assert url_kind("/data/upload/3/abc-x.jpg") == UPLOAD
    assert url_kind("/data/local-files/?d=photos/x.jpg") == LOCAL_FILES
    assert url_kind("https://example.org/x.jpg") == HTTP
    assert url_kind("s3://bucket/key.jpg") == CLOUD and url_kind("gs://b/k") == CLOUD
    assert url_kind("//evil.example/data/upload/1/x.jpg") == OTHER
    assert resolve("/data/upload/3/a.jpg", host + "/") == host + "/data/upload/3/a.jpg"
    with pytest.raises(ValueError, match="no Label Studio hostname"):
        resolve("/data/upload/3/a.jpg", None)
    for bad in ("s3://bucket/key.jpg", "ftp://x/y", "//evil.example/x.jpg", "", 5):
        with pytest.raises(ValueError, match="unsupported URL|empty or not a string"):
            resolve(bad, host)
    assert same_origin(host + "/x", "http://127.0.0.1:8080") and not same_origin("http://127.0.0.1:8081/x", host)
    assert same_origin("http://ls/x", "http://LS:80") and not same_origin("https://ls/x", "http://ls")


def test_project_references():
    assert parse_project("12.1795492545") == ("12", "1795492545")
    assert parse_project(12) == ("12", None) and parse_project({"id": 7, "title": "x"}) == ("7", None)
    assert parse_project(" 007 ") == ("7", None)
    for bad in ("x.y", True, None, -1, {"id": {"id": 1}}, "1.2.3", 1.5):
        with pytest.raises(ProjectIdError):
            parse_project(bad)
