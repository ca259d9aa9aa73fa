"""The controls as widgets: one number input per control, labelled with its unit and the schema's
range, set from a validated scenario and read back as the page's changes (scenario units). Values
are not clamped in the browser: the scenario's own validation judges them and its message is shown
beside the control, so a value the command line refuses is refused here with the same words."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import panel as pn
from pydantic import BaseModel

from models.scenario import Scenario
from sim.app.controls import Control, paths_control, scheme_controls, share_controls, stress_controls
from sim.app.settings import STRESS_KEY, shares_with_bank_rest, stress_list

Words = Callable[[str], str]
HINTS = {math.inf: "empty: unlimited", None: "empty: off", 1.0: "empty: 1"}


def value_at(scenario: Scenario, key: tuple[str, ...]) -> Any:
    """The validated scenario's value at a key (defaults filled in); None past a list's end."""
    node: Any = scenario
    for part in key:
        if isinstance(node, BaseModel):
            node = getattr(node, part)
        elif isinstance(node, dict):
            node = node[part]
        else:
            index = int(part)
            node = node[index] if index < len(node) else None
    return node


def shown(control: Control, stored: Any) -> float | int | None:
    """The number a control shows for a stored value (None: the empty input of an optional one)."""
    if stored is None or (control.optional and stored == control.empty):
        return None
    return int(stored) if control.integer else stored / control.scale


def stored(control: Control, value: float | int | None) -> Any:
    """The scenario value of a control's input."""
    if value is None:
        return control.empty
    return int(value) if control.integer else value * control.scale


def label(control: Control, w: Words) -> str:
    """`name (unit, range …; empty: …)` in the page's language."""
    if control.key[:2] == STRESS_KEY:
        name = f"{w('stress, year')} {int(control.key[2]) + 1}"
    else:
        name = w(control.label)
    hint = f"; {w(HINTS[control.empty])}" if control.optional else ""
    return f"{name} ({w(control.unit)}, {w('range')} {control.bounds.text(control.scale)}{hint})"


@dataclass
class Field:
    """A control's widget, its inline message and the value it opened with."""

    control: Control
    widget: pn.widgets.Widget
    message: pn.pane.Alert
    initial: Any

    def changed(self) -> bool:
        return self.widget.value != self.initial

    def relabel(self, w: Words) -> None:
        self.widget.label = label(self.control, w)


def make_field(control: Control, scenario: Scenario, w: Words) -> Field:
    """The widget of a control, showing the scenario's value."""
    value = shown(control, value_at(scenario, control.key))
    kind = pn.widgets.IntInput if control.integer else pn.widgets.FloatInput
    widget = kind(label=label(control, w), value=value, sizing_mode="stretch_width",
                  css_classes=["control"], tags=[control.dotted])
    return Field(control, widget, inline_message(), value)


def inline_message() -> pn.pane.Alert:
    """A hidden red box under a control, shown with the scenario's message about its value."""
    return pn.pane.Alert("", alert_type="danger", visible=False, margin=(0, 10),
                         css_classes=["inline-message"])


@dataclass
class Form:
    """All the controls of one scenario: scheme, stress, shares per product, paths."""

    scheme: list[Field]
    stress: list[Field]
    shares: dict[str, list[Field]]
    bank_rest: dict[str, pn.pane.Markdown]
    share_messages: dict[str, pn.pane.Alert]  # a product's shares as a whole (e.g. the bank's rest < 0)
    paths: Field

    @property
    def fields(self) -> list[Field]:
        return [*self.scheme, *self.stress, *(f for fs in self.shares.values() for f in fs), self.paths]

    def changes(self) -> dict[str, Any]:
        """The changed values as dotted key -> scenario value; a product's shares are set whole, the
        bank keeping the rest, once any of them changed; the stress list once any year changed."""
        out = {f.control.dotted: stored(f.control, f.widget.value) for f in self.scheme if f.changed()}
        if any(f.changed() for f in self.stress):
            out[".".join(STRESS_KEY)] = stress_list([f.widget.value for f in self.stress])
        for product, fields in self.shares.items():
            if any(f.changed() for f in fields):
                others = {f.control.key[-1]: stored(f.control, f.widget.value or 0.0) for f in fields}
                out[f"contract.shares.{product}"] = shares_with_bank_rest(others)
        return out

    def bank_keeps(self, product: str) -> float:
        """The bank's share of a product as the inputs now say (1 less the others)."""
        others = {f.control.key[-1]: stored(f.control, f.widget.value or 0.0) for f in self.shares[product]}
        return shares_with_bank_rest(others)["bank"]

    def field(self, dotted: str) -> Field | None:
        """The field of a dotted key, if one shows it."""
        return next((f for f in self.fields if f.control.dotted == dotted), None)

    def clear_messages(self) -> None:
        for alert in [f.message for f in self.fields] + list(self.share_messages.values()):
            alert.object, alert.visible = "", False

    def message_for(self, dotted: str) -> pn.pane.Alert | None:
        """Where a problem at a dotted key is shown: its field's message, or its product's shares'."""
        field = self.field(dotted)
        if field is not None:
            return field.message
        return next((alert for product, alert in self.share_messages.items()
                     if dotted.startswith(f"contract.shares.{product}")), None)


def make_form(scenario: Scenario, n_paths: int, w: Words) -> Form:
    """The controls of a scenario (its products' shares, a stress input per year of its horizon)."""
    shares = {p: [make_field(c, scenario, w) for c in share_controls(p)] for p in scenario.product_names}
    paths = make_field(paths_control(), scenario, w)
    paths.widget.value = paths.initial = n_paths
    return Form([make_field(c, scenario, w) for c in scheme_controls()],
                [make_field(c, scenario, w) for c in stress_controls(scenario.simulation.horizon_months)],
                shares, {p: pn.pane.Markdown("", css_classes=["bank-rest"]) for p in shares},
                {p: inline_message() for p in shares}, paths)
