"""The neighbour rules, a registered part each (`RULES`, chosen by SweepConfig.neighbours.rule): "attributes"
(the K faces nearest in the attributes, with and without the edit), "official" (the official DFI code's
selection) and "chainer" (chainer-dfi's). A rule is made once per sweep, `RULES[name](config, data,
inputs)`, and gives each (input, edit) its `Neighbours`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dfijax.data import FaceDataset
from dfijax.dfi import chainer, specs
from dfijax.dfi import neighbours as nb
from dfijax.dfi.sweep_config import SweepConfig
from dfijax.dfi.sweep_inputs import SweepInputs

# rule(i, spec, exclude) -> the neighbours of input i for the edit spec, never dataset index `exclude`
Rule = Callable[[int, specs.Spec, "int | None"], nb.Neighbours]


def _held(config: SweepConfig, data: FaceDataset, spec: specs.Spec) -> list[int]:
    """The attributes neighbours share with the input: the gender (same_gender, where the data has one),
    then `hold`'s that the data has and the edit leaves alone."""
    held = [data.attr_index(data.gender)] if (config.neighbours.same_gender and data.gender) else []
    edited = {i for i, _ in spec}
    held += [data.attr_index(n) for n in config.neighbours.hold if n in data.attr_names]
    return [j for j in dict.fromkeys(held) if j not in edited]


def attribute_neighbours(
    config: SweepConfig, data: FaceDataset, query: np.ndarray, spec: specs.Spec, exclude: int | None
) -> nb.Neighbours:
    """The "attributes" rule: the K faces nearest the query [A] in the attributes (config.neighbours.metric, auto:
    Hamming for binary datasets; config.neighbours.rank; same_gender) with and without the edit, never `exclude`."""
    metric = ("hamming" if data.binary else "l2") if config.neighbours.metric == "auto" else config.neighbours.metric
    return nb.select_neighbours(
        data.attrs,
        query,
        spec,
        config.neighbours.k,
        metric=metric,
        same=_held(config, data, spec),
        exclude=exclude,
        allow_fewer=config.neighbours.allow_fewer,
        rank=config.neighbours.rank,
    )


def _official_neighbours(
    config: SweepConfig,
    data: FaceDataset,
    inputs: SweepInputs,
    i: int,
    spec: tuple[tuple[int, int], ...],
    exclude: int | None,
    binary: nb.BinaryAttributes | None,
) -> nb.Neighbours:
    """The official code's rule: binary datasets as celeba_attributes.select (the held attributes, gender
    and `hold`, constrained to the input's side as demo2.py:L99-112 does), continuous (LFW) scores as
    demo1's make_manifolds."""
    if binary is None:
        held = _held(config, data, spec)
        return nb.official_binary_neighbours(
            data.attrs,
            inputs.queries[i],
            spec,
            config.neighbours.k,
            same=held,
            exclude=exclude,
            allow_fewer=config.neighbours.allow_fewer,
        )
    own = inputs.excludes[i]
    query = binary.members[own] if own is not None else binary.member(inputs.queries[i], data.attr_names)
    named = [(data.attr_names[j], sign) for j, sign in spec]
    return nb.official_lfw_neighbours(
        binary, query, named, config.neighbours.k, exclude=exclude, allow_fewer=config.neighbours.allow_fewer
    )


def attributes_rule(config: SweepConfig, data: FaceDataset, inputs: SweepInputs) -> Rule:
    return lambda i, spec, exclude: attribute_neighbours(config, data, inputs.queries[i], spec, exclude)


def official_rule(config: SweepConfig, data: FaceDataset, inputs: SweepInputs) -> Rule:
    binary = nb.binarize_scores(data.attrs, data.attr_names) if not data.binary else None
    return lambda i, spec, exclude: _official_neighbours(config, data, inputs, i, spec, exclude, binary)


def chainer_rule(config: SweepConfig, data: FaceDataset, inputs: SweepInputs) -> Rule:
    def rule(i: int, spec: specs.Spec, exclude: int | None) -> nb.Neighbours:
        return chainer.select_neighbours(
            data,
            inputs.images[i],
            inputs.queries[i],
            spec,
            config.neighbours.k,
            include=config.neighbours.include,
            exclude_attrs=config.neighbours.exclude,
            exclude=exclude,
            allow_fewer=config.neighbours.allow_fewer,
            batch=config.batch,
        )

    return rule


RULES: dict[str, Callable[[SweepConfig, FaceDataset, SweepInputs], Rule]] = {
    "attributes": attributes_rule,
    "official": official_rule,
    "chainer": chainer_rule,
}
