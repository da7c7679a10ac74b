"""sandbox.guards: copies of plain data without the pickle protocol, numpy array classes
without caller-supplied buffers."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from shapely.geometry import Point

from capstan.sandbox import guards


def test_deepcopy_copies_containers_and_keeps_cycles_and_sharing():
    shared = [1, 2]
    data = {"a": shared, "b": shared, "t": (shared, 3), "arr": np.arange(3), "p": Point(0, 1)}
    data["self"] = data
    copied = guards.deepcopy(data)
    assert copied is not data and copied["self"] is copied
    assert copied["a"] == [1, 2] and copied["a"] is not shared and copied["a"] is copied["b"]
    assert copied["t"][0] is copied["a"]
    assert copied["arr"] is not data["arr"] and copied["arr"].tolist() == [0, 1, 2]
    assert copied["p"] is data["p"]  # shapely geometries are immutable


def test_deepcopy_of_library_containers():
    Pose = collections.namedtuple("Pose", "x y")
    counts = collections.Counter("aab")
    table = collections.defaultdict(list, {"k": [1]})
    objects = np.array([[1], [2]], dtype=object)
    assert guards.deepcopy(Pose([1], 2)) == Pose([1], 2)
    assert guards.deepcopy(counts) == counts and type(guards.deepcopy(counts)) is collections.Counter
    copied = guards.deepcopy(table)
    assert copied == table and copied["k"] is not table["k"] and copied.default_factory is list
    copied_objects = guards.deepcopy(objects)
    assert copied_objects[0] == [1] and copied_objects[0] is not objects[0]
    assert guards.deepcopy(collections.deque([1, [2]], maxlen=3)).maxlen == 3


def test_copy_is_shallow_and_refuses_what_is_not_data():
    inner = [1]
    outer = [inner]
    assert guards.copy(outer)[0] is inner and guards.copy(outer) is not outer
    assert guards.copy((1, 2)) == (1, 2)
    with pytest.raises(TypeError, match="plain data"):
        guards.copy(collections)
    with pytest.raises(TypeError, match="plain data"):
        guards.deepcopy(object())
    with pytest.raises(TypeError):
        guards.deepcopy([1], {})  # no caller-supplied memo


def test_array_stand_ins_behave_like_the_classes_but_take_no_buffer():
    ndarray = guards.ARRAY_CLASSES[np.ndarray]
    recarray = guards.ARRAY_CLASSES[np.recarray]
    a = np.zeros(3)
    assert isinstance(a, ndarray) and not isinstance([1], ndarray)
    assert issubclass(np.recarray, ndarray) and issubclass(recarray, ndarray)
    assert ndarray((2, 2)).shape == (2, 2) and ndarray((2,), dtype="i4").dtype == np.int32
    assert ndarray.ndim is np.ndarray.ndim  # attributes come from the real class
    assert repr(ndarray) == repr(np.ndarray)
    buffer = bytearray(8)
    with pytest.raises(TypeError, match="buffer"):
        ndarray((1,), "O", buffer)
    with pytest.raises(TypeError, match="buffer"):
        ndarray((1,), dtype="O", buffer=buffer)
    with pytest.raises(TypeError, match="buf"):
        recarray((1,), dtype=[("f", "O")], buf=buffer)
    with pytest.raises(TypeError, match="strides"):  # element 1's object field over element 0's int
        ndarray((2,), [("o", "O"), ("i", "u8")], strides=(8,))
    with pytest.raises(TypeError, match="offset"):
        ndarray((1,), "u8", offset=8)
    with pytest.raises(AttributeError):
        ndarray._real  # noqa: B018 - nothing on the stand-in leads back to the real constructor
