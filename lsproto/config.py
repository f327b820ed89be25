"""Labeling configs: read which `<Choices>` to fill for which `<Image>`, and write the one tasveer uses.

tasveer serves single-image classification: exactly one `<Choices>` control whose `toName` names an
`<Image>` whose `value` is a task data key (`$image` -> task["data"]["image"]). A `<Choice>`'s label
is its `alias` when it has one (that is what Label Studio stores in results), else its `value`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

IMAGE_NAME = "image"  # <Image name=...> and the task data key ($image) of configs tasveer writes
CHOICES_NAME = "choice"  # <Choices name=...>: from_name of every result tasveer writes


class LabelConfigError(ValueError):
    """A labeling config tasveer cannot serve; the message says why."""


@dataclass(frozen=True)
class LabelConfig:
    from_name: str  # the <Choices name=...>
    to_name: str  # the <Image name=...>
    data_key: str  # task["data"][data_key] holds the image URL
    labels: tuple[str, ...]  # choice labels (alias or value), in config order


def parse_label_config(xml: str) -> LabelConfig:
    if not isinstance(xml, str) or not xml.strip():
        raise LabelConfigError("labeling config is empty")
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        raise LabelConfigError("labeling config must not contain DOCTYPE or ENTITY declarations")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise LabelConfigError(f"labeling config is not valid XML ({exc})") from None

    images = {el.get("name", ""): el.get("value") or "" for el in root.iter("Image") if el.get("name")}
    if not images:
        raise LabelConfigError("labeling config has no <Image> tag: tasveer classifies images")
    candidates = [el for el in root.iter("Choices") if el.get("name") and (el.get("toName") or "") in images]
    if not candidates:
        raise LabelConfigError(
            f"labeling config has no <Choices> with toName pointing at an <Image> (images: {', '.join(sorted(images))})"
        )
    if len(candidates) > 1:
        names = ", ".join(el.get("name", "") for el in candidates)
        raise LabelConfigError(f"labeling config has several <Choices> on images ({names}); expected one")
    choices = candidates[0]
    to_name = choices.get("toName", "")
    value = images[to_name]
    if not value.startswith("$") or len(value) < 2:
        raise LabelConfigError(f'<Image name={to_name!r}> value must reference task data like "$image"; got {value!r}')
    labels: list[str] = []
    for el in choices.iter("Choice"):
        label = el.get("alias") or el.get("value")
        if not label:
            raise LabelConfigError(f"a <Choice> in <Choices name={choices.get('name')!r}> has no value")
        if label in labels:
            raise LabelConfigError(f"label {label!r} appears twice in <Choices name={choices.get('name')!r}>")
        labels.append(label)
    if len(labels) < 2:
        raise LabelConfigError(
            f"<Choices name={choices.get('name')!r}> needs at least two <Choice> values; got {len(labels)}"
        )
    return LabelConfig(from_name=choices.get("name", ""), to_name=to_name, data_key=value[1:], labels=tuple(labels))


def parse_labels(text: str | Iterable[str]) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c']; refuses fewer than two and duplicate labels."""
    items = text.split(",") if isinstance(text, str) else list(text)
    labels = [s.strip() for s in items if s.strip()]
    if len(labels) < 2:
        raise LabelConfigError("give at least two labels")
    if len(set(labels)) != len(labels):
        raise LabelConfigError(f"duplicate labels in {labels}")
    return labels


def build_label_config(labels: Iterable[str]) -> str:
    """`<View>` with one `<Image name="image" value="$image"/>` and a single-choice `<Choices>`."""
    choices = "".join(f"<Choice value={quoteattr(label)}/>" for label in parse_labels(labels))
    return (
        f'<View><Image name="{IMAGE_NAME}" value="${IMAGE_NAME}"/>'
        f'<Choices name="{CHOICES_NAME}" toName="{IMAGE_NAME}" choice="single" showInLine="true">'
        f"{choices}</Choices></View>"
    )
