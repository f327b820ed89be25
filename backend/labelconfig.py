"""Read a Label Studio labeling config: which `<Choices>` to fill for which `<Image>`.

The backend serves single-image classification: exactly one `<Choices>` control whose `toName`
names an `<Image>` object whose `value` is a task data key (`$image` -> `image`).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


class LabelConfigError(ValueError):
    """A labeling config this backend cannot serve; the message says why."""


@dataclass(frozen=True)
class LabelConfig:
    from_name: str  # the <Choices name=...>
    to_name: str  # the <Image name=...>
    data_key: str  # task["data"][data_key] holds the image URL
    labels: tuple[str, ...]  # choice values, in config order

    def to_dict(self) -> dict:
        return {
            "from_name": self.from_name,
            "to_name": self.to_name,
            "data_key": self.data_key,
            "labels": list(self.labels),
        }


def parse_label_config(xml: str) -> LabelConfig:
    if not isinstance(xml, str) or not xml.strip():
        raise LabelConfigError("labeling config is empty")
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        raise LabelConfigError("labeling config must not contain DOCTYPE or ENTITY declarations")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise LabelConfigError(f"labeling config is not valid XML ({exc})") from None

    images = {}
    for el in root.iter("Image"):
        name, value = el.get("name"), el.get("value") or ""
        if name:
            images[name] = value
    if not images:
        raise LabelConfigError("labeling config has no <Image> tag: this backend classifies images")

    candidates = []
    for el in root.iter("Choices"):
        to_name = el.get("toName") or ""
        if el.get("name") and to_name in images:
            candidates.append(el)
    if not candidates:
        raise LabelConfigError(
            "labeling config has no <Choices> with toName pointing at an <Image> "
            f"(images: {', '.join(sorted(images))})"
        )
    if len(candidates) > 1:
        names = ", ".join(el.get("name") for el in candidates)
        raise LabelConfigError(f"labeling config has several <Choices> on images ({names}); expected one")
    choices = candidates[0]
    to_name = choices.get("toName")
    value = images[to_name]
    if not value.startswith("$") or len(value) < 2:
        raise LabelConfigError(
            f"<Image name={to_name!r}> value must reference task data like \"$image\"; got {value!r}"
        )
    labels = []
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
    return LabelConfig(from_name=choices.get("name"), to_name=to_name, data_key=value[1:], labels=tuple(labels))
