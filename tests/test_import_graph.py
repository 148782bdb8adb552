"""The package's rooms import one way (geometry -> flame/render -> models -> reconstruction ->
losses -> data -> train/infer/eval -> export -> cli): no upward import and no circle."""

from tests.script_loader import load_script


def test_the_rooms_import_one_way(capsys):
    assert load_script("import_graph").main() == 0, capsys.readouterr().out


def test_the_checker_sees_upward_imports_and_circles():
    graph = load_script("import_graph")
    assert graph.circles({"a": {"b": set()}, "b": {"a": set()}}) == [["a", "b", "a"]]
    rooms = graph.room_graph()
    assert "reconstruction" in rooms["train"] and "train" not in rooms.get("reconstruction", {})
