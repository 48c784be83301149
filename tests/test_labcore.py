"""labcore: the registry and the atomic writers both labs share."""

from __future__ import annotations

from pathlib import Path

import pytest

from labcore import (
    Registry,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    check_callable,
    check_choice,
    check_int,
    check_name,
    check_type,
    non_dominated,
    pareto_front,
)
from labcore.atomic import atomic_dir


@pytest.fixture
def shapes() -> Registry:
    registry: Registry = Registry("shape", plural="shapes")

    @registry.register("square")
    def _square(x: float) -> float:
        return x * x

    registry.add("double", lambda x: 2 * x)
    return registry


def test_decorator_registers_and_returns_the_object(shapes: Registry) -> None:
    def cube(x: float) -> float:
        return x**3

    assert shapes.register()(cube) is cube
    assert shapes.get("cube")(2) == 8
    assert shapes["square"](3) == 9
    assert "square" in shapes and "circle" not in shapes and ["x"] not in shapes
    assert len(shapes) == 3


def test_names_sorted_or_in_registration_order(shapes: Registry) -> None:
    assert shapes.names() == ("double", "square") == tuple(shapes)
    ordered: Registry = Registry("step", sort=False)
    for name in ("b", "a", "c"):
        ordered.add(name, name)
    assert ordered.names() == ("b", "a", "c") == tuple(ordered)
    assert [name for name, _ in ordered.items()] == ["b", "a", "c"] == list(ordered.values())


def test_name_from_attribute() -> None:
    class Thing:
        name = "widget"

    registry: Registry = Registry("thing")
    registry.register()(Thing())
    assert registry.names() == ("widget",)


def test_unknown_name_lists_the_known_ones(shapes: Registry) -> None:
    with pytest.raises(ValueError, match=r"^unknown shape 'circle'; known shapes: double, square$"):
        shapes.get("circle")
    with pytest.raises(TypeError, match=r"^shape must be a name \(str\), got \['x'\]; known sh"):
        shapes.get(["x"])  # a wrong type is a TypeError
    assert shapes.get(["x"], None) is None  # with a default, a miss like any unknown name
    plain: Registry = Registry("colour")
    plain.add("red", 1)
    with pytest.raises(ValueError, match=r"^unknown colour 'blue'; known: red$"):
        plain.get("blue")
    assert plain.get("blue", None) is None


def test_duplicate_refused_unless_overwrite(shapes: Registry) -> None:
    with pytest.raises(
        ValueError, match="shape 'square' is already registered; pass overwrite=True"
    ):
        shapes.add("square", abs)
    shapes.add("square", abs, overwrite=True)
    assert shapes.get("square") is abs
    strict: Registry = Registry("family", duplicate_hint="pick another name")
    strict.add("a", 1)
    with pytest.raises(ValueError, match="family 'a' is already registered; pick another name"):
        strict.register("a")(2)


def test_non_str_name_is_a_type_error(shapes: Registry) -> None:
    with pytest.raises(TypeError, match="shape name must be a str, got int"):
        shapes.add(3, abs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="shape name must be a str"):
        shapes.register(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pass name="):
        shapes.register()(object())


def test_setitem_and_delitem(shapes: Registry) -> None:
    shapes["square"] = abs
    assert shapes.get("square") is abs
    del shapes["square"]
    assert "square" not in shapes
    with pytest.raises(ValueError, match="unknown shape 'square'"):
        del shapes["square"]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_text_and_bytes(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    assert atomic_write_text(target, "héllo\n") == target
    assert target.read_bytes() == "héllo\n".encode()
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert _leftovers(target.parent) == ["a.txt"]
    with pytest.raises(TypeError, match="use atomic_write_text"):
        atomic_write_bytes(target, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="use atomic_write_bytes"):
        atomic_write_text(target, b"bytes")  # type: ignore[arg-type]


def test_atomic_path_keeps_the_suffix_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".csv" and tmp != target
        tmp.write_text("a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n"
    assert _leftovers(tmp_path) == ["table.csv"]


def test_original_untouched_when_the_writer_raises(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == ["keep.txt"]


def test_typed_registry_refuses_other_types_with_type_error() -> None:
    from dataclasses import dataclass

    @dataclass
    class Shape:
        name: str

    shapes: Registry[Shape] = Registry("shape", item_type=Shape)
    square = shapes.add_named(Shape("square"))
    assert shapes.get("square") is square
    with pytest.raises(TypeError, match="a shape must be a Shape, got str"):
        shapes.add_named("circle")  # checked before its name is read
    with pytest.raises(TypeError, match="a shape must be a Shape, got int"):
        shapes.add("one", 1)
    with pytest.raises(ValueError, match="'square' is already registered"):
        shapes.add_named(Shape("square"))
    circle = Shape("circle")
    assert shapes.resolve(circle) is circle  # an object passes through unregistered
    assert shapes.resolve("square") is square
    with pytest.raises(ValueError, match="unknown shape 'triangle'"):
        shapes.resolve("triangle")
    with pytest.raises(TypeError, match=r"shape must be a name \(str\) or a Shape, got 3"):
        shapes.resolve(3)


def test_checks_raise_type_error_for_types_and_value_error_for_values() -> None:
    import numpy as np

    assert check_int(np.int64(4), "n", minimum=2) == 4
    with pytest.raises(TypeError, match="n must be an int, got float 4.0"):
        check_int(4.0, "n")
    with pytest.raises(TypeError, match="n must be an int, got bool False"):
        check_int(False, "n")
    with pytest.raises(ValueError, match="n must be >= 2, got 1"):
        check_int(1, "n", minimum=2)
    assert check_int(-5, "offset", minimum=None) == -5
    assert check_name("l2", "name") == "l2"
    with pytest.raises(ValueError, match="name must not be empty"):
        check_name("", "name")
    with pytest.raises(TypeError, match="name must be a str, got int"):
        check_name(3, "name")
    with pytest.raises(TypeError, match="x must be an int or a str, got float"):
        check_type(1.5, (int, str), "x")
    with pytest.raises(TypeError, match="x must be an ExpertSlot-like pair, got float"):
        check_type(1.5, tuple, "x", expected="an ExpertSlot-like pair")
    with pytest.raises(TypeError, match="f must be callable, got int 3"):
        check_callable(3, "f")


def test_atomic_dir_publishes_a_complete_folder(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "model"
    with atomic_dir(target) as tmp:
        assert tmp.parent == target.parent and tmp != target and not target.exists()
        (tmp / "weights.bin").write_bytes(b"new")
    assert _leftovers(target) == ["weights.bin"]
    assert _leftovers(target.parent) == ["model"]
    assert target.stat().st_mode & 0o777 == 0o755


def test_atomic_dir_replaces_an_existing_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.bin").write_bytes(b"old")
    with atomic_dir(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"new")
    assert _leftovers(target) == ["weights.bin"]
    assert _leftovers(tmp_path) == ["model"]


def test_atomic_dir_keeps_a_concurrent_writers_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with atomic_dir(target) as mine, atomic_dir(target) as theirs:
        (mine / "mine.bin").write_bytes(b"1")
        (theirs / "theirs.bin").write_bytes(b"2")
    # The inner block published first; the outer one found a complete folder in place.
    assert _leftovers(tmp_path) == ["model"]
    assert _leftovers(target) in (["mine.bin"], ["theirs.bin"])


def test_atomic_dir_leaves_the_target_untouched_when_the_block_raises(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_dir(target) as tmp:
            (tmp / "half.bin").write_bytes(b"half")
            raise RuntimeError("disk full")
    assert _leftovers(target) == ["old.bin"]
    assert _leftovers(tmp_path) == ["model"]


def test_check_choice_has_the_registry_messages() -> None:
    assert check_choice("min", "direction", ("min", "max")) == "min"
    with pytest.raises(ValueError, match=r"^unknown direction 'up'; known: min, max$"):
        check_choice("up", "direction", ("min", "max"))
    with pytest.raises(TypeError, match=r"^direction must be a name \(str\), got 1; known di"):
        check_choice(1, "direction", ("min", "max"), plural="directions")


def test_non_dominated_keeps_ties_and_refuses_nan() -> None:
    points = [(1, 3), (2, 2), (3, 1), (2, 3), (1, 3)]
    assert non_dominated(points) == [0, 1, 2, 4]  # (2, 3) is dominated; equal points stay
    assert non_dominated([]) == []
    with pytest.raises(ValueError, match="NaN objective"):
        non_dominated([(1.0, float("nan"))])
    with pytest.raises(ValueError, match="same number of objectives"):
        non_dominated([(1.0,), (1.0, 2.0)])


def test_pareto_front_of_a_table_keeps_its_order_and_index() -> None:
    import pandas as pd

    table = pd.DataFrame({"ppl": [4.1, 4.0, 3.9], "tok": [90, 100, 80]}, index=[7, 5, 6])
    assert pareto_front(table, minimize="ppl", maximize="tok").index.tolist() == [5, 6]
    with pytest.raises(ValueError, match="at least one column"):
        pareto_front(table)


def test_atomic_files_get_the_permissions_a_new_file_would(tmp_path):
    import os
    import stat

    from labcore.atomic import atomic_write_text

    old = os.umask(0o022)
    try:
        written = atomic_write_text(tmp_path / "report.txt", "x")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o644
