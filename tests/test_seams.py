"""The seams: config builds `process:`, `restart:` and the channels from the registries, and nothing else
lists their names (so a new strategy is its module, one registry line, its test and its docs)."""

from __future__ import annotations

from typing import Literal

import pytest

from govheal import config as base
from govheal.matchers import MATCHERS
from govheal.seams import parse_config, seams
from remediator.strategies import STRATEGIES
from webhook_receiver.bridge.notifiers import NOTIFIERS


class RunitSpec(base.RestartSpec):
    """A strategy the code base does not have: only its model, as a new module would declare it."""

    strategy: Literal["runit"]
    service: str


def test_the_seams_are_the_registries() -> None:
    s = seams()
    assert list(s.process) == list(MATCHERS) and list(s.restart) == list(STRATEGIES)
    assert list(s.channel) == list(NOTIFIERS)
    assert all(s.restart[n] is STRATEGIES[n].Spec for n in STRATEGIES)


def test_a_new_strategy_is_only_its_model_to_the_config() -> None:
    more = base.Seams(process=seams().process, restart={**seams().restart, "runit": RunitSpec},
                      channel=seams().channel)
    text = "agents:\n  - name: a\n    process: {pidfile: a.pid}\n    restart: {strategy: runit, service: a}\n"
    cfg = base.parse_config(text, seams=more)
    assert isinstance(cfg.agents[0].restart, RunitSpec) and cfg.agents[0].restart.service == "a"
    with pytest.raises(base.ConfigError, match=r"agents\[0\]\.restart\.servce: unknown key 'servce'; "
                                               r"did you mean 'service'\?"):
        base.parse_config(text.replace("service:", "servce:"), seams=more)
    with pytest.raises(base.ConfigError, match=r"use one of: launchd, systemd, command, signal, runit"):
        base.parse_config(text.replace("runit", "s6"), seams=more)
    with pytest.raises(base.ConfigError, match=r"use one of: launchd, systemd, command, signal$"):
        parse_config(text)  # the real registries do not know it


def test_a_registry_name_must_be_its_models_tag() -> None:
    wrong = base.Seams(process=seams().process, restart={**seams().restart, "sv": RunitSpec},
                       channel=seams().channel)
    with pytest.raises(TypeError, match=r"restart strategy 'sv': its model's 'strategy' must be Literal\['sv'\]"):
        base.build_config_model(wrong)


def test_the_model_is_built_once_per_set_of_registries() -> None:
    assert base.build_config_model(seams()) is base.build_config_model(seams())
    again = base.Seams(process=dict(seams().process), restart=dict(seams().restart), channel=dict(seams().channel))
    assert base.build_config_model(again) is base.build_config_model(seams())


def test_each_channel_type_has_only_its_own_keys() -> None:
    text = ("agents:\n  - name: a\n    process: {pidfile: a.pid}\nnotifications:\n  channels:\n"
            "    ops: {type: discord, bot_token_file: t}\n")
    with pytest.raises(base.ConfigError, match=r"notifications\.channels\.ops\.bot_token_file: unknown key "
                                               r"'bot_token_file'; did you mean 'webhook_url_file'\?"):
        parse_config(text)
    cfg = parse_config(text.replace("discord, bot_token_file: t", "telegram, bot_token_file: t, chat_id: '1'"))
    assert cfg.notifications.channels["ops"].bot_token_file == "t"
