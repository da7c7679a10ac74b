"""Source of the robot code-generation problems; `python -m benchmarks.robocode_source` rewrites robocode.jsonl.

Each problem is HumanEval-shaped: `prompt` (imports + signature + docstring), `canonical_solution`
(the body), `test` (`def check(candidate): ...`) and `entry_point`. Tests compare floats with a
tolerance and accept lists, tuples or numpy arrays wherever a sequence of numbers is returned.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

JSONL_PATH = Path(__file__).resolve().parents[1] / "capstan" / "bench" / "data" / "robocode.jsonl"

# Shared by every test: tolerant comparison of numbers and (nested) sequences of numbers.
_CLOSE = """
def _close(a, b, tol=1e-6):
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        return abs(float(a) - float(b)) <= tol
    a, b = list(a), list(b)
    return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))

"""


def _problem(name: str, prompt: str, solution: str, test: str) -> dict:
    return {
        "prompt": textwrap.dedent(prompt).lstrip("\n"),
        "canonical_solution": textwrap.indent(textwrap.dedent(solution).strip("\n"), "    ") + "\n",
        "test": _CLOSE + textwrap.dedent(test).strip("\n") + "\n",
        "entry_point": name,
    }


PROBLEMS: list[dict] = [
    _problem(
        "distance_2d",
        '''
        import math


        def distance_2d(p, q):
            """Return the Euclidean distance between two points p=[x, y] and q=[x, y] on the table.
            >>> distance_2d([0.0, 0.0], [0.3, 0.4])
            0.5
            """
        ''',
        "return math.hypot(q[0] - p[0], q[1] - p[1])",
        """
        def check(candidate):
            assert _close(candidate([0.0, 0.0], [0.3, 0.4]), 0.5)
            assert _close(candidate([1.0, 1.0], [1.0, 1.0]), 0.0)
            assert _close(candidate([-0.1, 0.2], [0.2, -0.2]), 0.5)
            assert _close(candidate((0.5, 0.5), (0.5, 0.7)), 0.2)
        """,
    ),
    _problem(
        "heading_deg",
        '''
        import math


        def heading_deg(p, q):
            """Return the direction from point p to point q as an angle in degrees, measured
            counter-clockwise from the +x axis (right), in the range [0, 360).
            >>> heading_deg([0, 0], [0, 1])
            90.0
            >>> heading_deg([0, 0], [0, -1])
            270.0
            """
        ''',
        "return math.degrees(math.atan2(q[1] - p[1], q[0] - p[0])) % 360.0",
        """
        def check(candidate):
            assert _close(candidate([0, 0], [1, 0]), 0.0)
            assert _close(candidate([0, 0], [0, 1]), 90.0)
            assert _close(candidate([0, 0], [-1, 0]), 180.0)
            assert _close(candidate([0, 0], [0, -1]), 270.0)
            assert _close(candidate([1, 1], [2, 2]), 45.0)
            assert _close(candidate([1, 1], [2, 0]), 315.0)
        """,
    ),
    _problem(
        "rotate_point",
        '''
        import math


        def rotate_point(point, center, angle_deg):
            """Rotate `point` [x, y] about `center` [x, y] counter-clockwise by `angle_deg` degrees and
            return the new [x, y].
            >>> [round(v, 6) for v in rotate_point([1, 0], [0, 0], 90)]
            [0.0, 1.0]
            """
        ''',
        """
        a = math.radians(angle_deg)
        dx, dy = point[0] - center[0], point[1] - center[1]
        return [center[0] + dx * math.cos(a) - dy * math.sin(a), center[1] + dx * math.sin(a) + dy * math.cos(a)]
        """,
        """
        def check(candidate):
            assert _close(candidate([1, 0], [0, 0], 90), [0, 1])
            assert _close(candidate([1, 0], [0, 0], 180), [-1, 0])
            assert _close(candidate([2, 1], [1, 1], -90), [1, 0])
            assert _close(candidate([0.5, 0.5], [0.5, 0.5], 33), [0.5, 0.5])
            assert _close(candidate([1, 0], [0, 0], 45), [2 ** 0.5 / 2, 2 ** 0.5 / 2])
        """,
    ),
    _problem(
        "polygon_area",
        '''
        from shapely.geometry import Polygon


        def polygon_area(vertices):
            """Return the area of the simple polygon with the given [x, y] vertices (in order,
            either winding). Use shapely.
            >>> polygon_area([[0, 0], [1, 0], [1, 1], [0, 1]])
            1.0
            """
        ''',
        "return float(Polygon(vertices).area)",
        """
        def check(candidate):
            assert _close(candidate([[0, 0], [1, 0], [1, 1], [0, 1]]), 1.0)
            assert _close(candidate([[0, 0], [0, 1], [1, 1], [1, 0]]), 1.0)
            assert _close(candidate([[0, 0], [0.4, 0], [0, 0.3]]), 0.06)
            assert _close(candidate([[0, 0], [2, 0], [2, 2], [1, 1], [0, 2]]), 3.0)
        """,
    ),
    _problem(
        "midpoint",
        '''
        def midpoint(p, q):
            """Return the point [x, y] halfway between points p and q.
            >>> midpoint([0, 0], [0.2, 0.4])
            [0.1, 0.2]
            """
        ''',
        "return [(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0]",
        """
        def check(candidate):
            assert _close(candidate([0, 0], [0.2, 0.4]), [0.1, 0.2])
            assert _close(candidate([-1, 3], [1, -3]), [0, 0])
            assert _close(candidate([0.3, 0.3], [0.3, 0.3]), [0.3, 0.3])
        """,
    ),
    _problem(
        "is_left_of",
        '''
        def is_left_of(a, b, margin=0.0):
            """Positions are [x, y] in table coordinates where +x is to the right. Return True when
            position `a` is left of position `b` by more than `margin` metres (only x matters).
            >>> is_left_of([0.1, 0.5], [0.3, 0.0])
            True
            >>> is_left_of([0.25, 0.5], [0.3, 0.0], margin=0.1)
            False
            """
        ''',
        "return a[0] < b[0] - margin",
        """
        def check(candidate):
            assert candidate([0.1, 0.5], [0.3, 0.0]) is True
            assert candidate([0.3, 0.5], [0.1, 0.0]) is False
            assert candidate([0.25, 0.5], [0.3, 0.0], margin=0.1) is False
            assert candidate([0.15, 0.5], [0.3, 0.0], margin=0.1) is True
            assert candidate([0.3, 0.9], [0.3, 0.0]) is False
        """,
    ),
    _problem(
        "closest_object",
        '''
        import math


        def closest_object(target, objects):
            """`objects` maps object names to [x, y] positions. Return the name of the object closest
            to the point `target` [x, y]. Ties go to the alphabetically first name.
            >>> closest_object([0, 0], {"red block": [1, 1], "blue bowl": [0.2, 0.1]})
            'blue bowl'
            """
        ''',
        "return min(sorted(objects), key=lambda n: math.dist(target, objects[n]))",
        """
        def check(candidate):
            objs = {"red block": [1, 1], "blue bowl": [0.2, 0.1], "green block": [-0.5, 0.0]}
            assert candidate([0, 0], objs) == "blue bowl"
            assert candidate([1, 0.9], objs) == "red block"
            assert candidate([-0.4, 0.1], objs) == "green block"
            assert candidate([0, 0], {"b": [1, 0], "a": [-1, 0]}) == "a"
        """,
    ),
    _problem(
        "objects_between",
        '''
        import math


        def objects_between(a, b, objects, width):
            """Return the names of objects lying between points `a` and `b` [x, y]: the object's
            projection onto the segment from a to b falls strictly inside the segment and its
            perpendicular distance to the line through a and b is at most `width`. `objects` maps
            names to [x, y]. Sort the result by distance from `a` (closest first).
            >>> objects_between([0, 0], [1, 0], {"x": [0.5, 0.05], "y": [0.5, 0.3], "z": [1.5, 0]}, 0.1)
            ['x']
            """
        ''',
        """
        dx, dy = b[0] - a[0], b[1] - a[1]
        length2 = dx * dx + dy * dy
        found = []
        for name, (x, y) in objects.items():
            t = ((x - a[0]) * dx + (y - a[1]) * dy) / length2
            perp = abs((x - a[0]) * dy - (y - a[1]) * dx) / math.sqrt(length2)
            if 0 < t < 1 and perp <= width:
                found.append((t, name))
        return [name for _, name in sorted(found)]
        """,
        """
        def check(candidate):
            objs = {"x": [0.5, 0.05], "y": [0.5, 0.3], "z": [1.5, 0], "w": [0.2, -0.05]}
            assert candidate([0, 0], [1, 0], objs, 0.1) == ["w", "x"]
            assert candidate([1, 0], [0, 0], objs, 0.1) == ["x", "w"]
            assert candidate([0, 0], [1, 0], objs, 0.01) == []
            assert candidate([0, 0], [1, 0], objs, 0.5) == ["w", "x", "y"]
            assert candidate([0, 0], [0, 1], {"p": [0, 0.5], "q": [0.2, 0.5]}, 0.1) == ["p"]
        """,
    ),
    _problem(
        "interpolate_line",
        '''
        def interpolate_line(start, end, n):
            """Return `n` (n >= 2) evenly spaced [x, y] waypoints from `start` to `end`, both included.
            >>> interpolate_line([0, 0], [1, 0], 3)
            [[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]]
            """
        ''',
        """
        return [[start[0] + (end[0] - start[0]) * i / (n - 1), start[1] + (end[1] - start[1]) * i / (n - 1)]
                for i in range(n)]
        """,
        """
        def check(candidate):
            assert _close(candidate([0, 0], [1, 0], 3), [[0, 0], [0.5, 0], [1, 0]])
            assert _close(candidate([0, 1], [0, 0], 2), [[0, 1], [0, 0]])
            assert _close(candidate([0.1, 0.1], [0.4, 0.7], 4), [[0.1, 0.1], [0.2, 0.3], [0.3, 0.5], [0.4, 0.7]])
        """,
    ),
    _problem(
        "circle_waypoints",
        '''
        import math


        def circle_waypoints(center, radius, n, start_angle_deg=0.0):
            """Return `n` [x, y] points evenly spaced on the circle of `radius` around `center`, going
            counter-clockwise and starting at angle `start_angle_deg` (degrees from the +x axis).
            >>> [[round(v, 6) for v in p] for p in circle_waypoints([0, 0], 1, 4)]
            [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-0.0, -1.0]]
            """
        ''',
        """
        pts = []
        for i in range(n):
            a = math.radians(start_angle_deg) + 2 * math.pi * i / n
            pts.append([center[0] + radius * math.cos(a), center[1] + radius * math.sin(a)])
        return pts
        """,
        """
        def check(candidate):
            assert _close(candidate([0, 0], 1, 4), [[1, 0], [0, 1], [-1, 0], [0, -1]])
            assert _close(candidate([0.5, 0.5], 0.1, 2, 90), [[0.5, 0.6], [0.5, 0.4]])
            pts = candidate([0.2, -0.1], 0.3, 7, 10)
            assert len(pts) == 7
            assert all(_close(((p[0] - 0.2) ** 2 + (p[1] + 0.1) ** 2) ** 0.5, 0.3) for p in pts)
        """,
    ),
    _problem(
        "square_waypoints",
        '''
        def square_waypoints(center, side):
            """Return the 4 corners of the axis-aligned square of side length `side` centred on
            `center` [x, y], in the order bottom-left, bottom-right, top-right, top-left (+y is up).
            >>> square_waypoints([0, 0], 2)
            [[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]
            """
        ''',
        """
        h = side / 2.0
        cx, cy = center
        return [[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]]
        """,
        """
        def check(candidate):
            assert _close(candidate([0, 0], 2), [[-1, -1], [1, -1], [1, 1], [-1, 1]])
            assert _close(candidate([0.5, 0.2], 0.1), [[0.45, 0.15], [0.55, 0.15], [0.55, 0.25], [0.45, 0.25]])
        """,
    ),
    _problem(
        "sort_left_to_right",
        '''
        def sort_left_to_right(objects):
            """`objects` maps names to [x, y] positions (+x is right). Return the names ordered from
            the leftmost to the rightmost; equal x values are ordered by name.
            >>> sort_left_to_right({"a": [0.3, 0], "b": [-0.2, 1], "c": [0.1, 0.5]})
            ['b', 'c', 'a']
            """
        ''',
        "return sorted(objects, key=lambda n: (objects[n][0], n))",
        """
        def check(candidate):
            assert candidate({"a": [0.3, 0], "b": [-0.2, 1], "c": [0.1, 0.5]}) == ["b", "c", "a"]
            assert candidate({"z": [0, 0], "y": [0, 1]}) == ["y", "z"]
            assert candidate({}) == []
        """,
    ),
    _problem(
        "sort_by_distance",
        '''
        import math


        def sort_by_distance(objects, origin):
            """`objects` maps names to [x, y]. Return the names sorted by distance to `origin` [x, y],
            nearest first; equal distances are ordered by name.
            >>> sort_by_distance({"far": [1, 0], "near": [0.1, 0]}, [0, 0])
            ['near', 'far']
            """
        ''',
        "return sorted(objects, key=lambda n: (math.dist(objects[n], origin), n))",
        """
        def check(candidate):
            assert candidate({"far": [1, 0], "near": [0.1, 0]}, [0, 0]) == ["near", "far"]
            objs = {"a": [0, 1], "b": [1, 0], "c": [0.5, 0.5], "d": [3, 3]}
            assert candidate(objs, [0, 0]) == ["c", "a", "b", "d"]
            assert candidate(objs, [3, 3]) == ["d", "c", "a", "b"]
        """,
    ),
    _problem(
        "grid_layout",
        '''
        def grid_layout(center, rows, cols, spacing):
            """Return rows*cols [x, y] positions of a grid centred on `center` with `spacing` metres
            between neighbours. Order: row by row from the top row (largest y) down, and within a
            row from left (smallest x) to right.
            >>> grid_layout([0, 0], 1, 2, 0.2)
            [[-0.1, 0.0], [0.1, 0.0]]
            """
        ''',
        """
        pts = []
        for r in range(rows):
            y = center[1] + ((rows - 1) / 2.0 - r) * spacing
            for c in range(cols):
                x = center[0] + (c - (cols - 1) / 2.0) * spacing
                pts.append([x, y])
        return pts
        """,
        """
        def check(candidate):
            assert _close(candidate([0, 0], 1, 2, 0.2), [[-0.1, 0], [0.1, 0]])
            assert _close(candidate([0.5, 0.5], 2, 2, 0.1), [[0.45, 0.55], [0.55, 0.55], [0.45, 0.45], [0.55, 0.45]])
            assert _close(candidate([0, 0], 3, 1, 1.0), [[0, 1], [0, 0], [0, -1]])
            assert _close(candidate([1, 1], 1, 1, 5.0), [[1, 1]])
        """,
    ),
    _problem(
        "bounding_box",
        '''
        def bounding_box(points):
            """Return the axis-aligned bounding box of a non-empty list of [x, y] points as
            [x_min, y_min, x_max, y_max].
            >>> bounding_box([[0, 1], [2, -1], [1, 0]])
            [0, -1, 2, 1]
            """
        ''',
        """
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        return [min(xs), min(ys), max(xs), max(ys)]
        """,
        """
        def check(candidate):
            assert _close(candidate([[0, 1], [2, -1], [1, 0]]), [0, -1, 2, 1])
            assert _close(candidate([[0.3, 0.3]]), [0.3, 0.3, 0.3, 0.3])
            assert _close(candidate([[-1, -2], [-3, 5], [4, 0]]), [-3, -2, 4, 5])
        """,
    ),
    _problem(
        "clamp_to_workspace",
        '''
        def clamp_to_workspace(point, bounds):
            """Clamp the [x, y] `point` into the rectangular workspace `bounds` given as
            [x_min, x_max, y_min, y_max] and return the clamped [x, y].
            >>> clamp_to_workspace([0.9, 0.2], [-0.3, 0.3, 0.2, 0.8])
            [0.3, 0.2]
            """
        ''',
        """
        x_min, x_max, y_min, y_max = bounds
        return [min(max(point[0], x_min), x_max), min(max(point[1], y_min), y_max)]
        """,
        """
        def check(candidate):
            b = [-0.3, 0.3, 0.2, 0.8]
            assert _close(candidate([0.9, 0.2], b), [0.3, 0.2])
            assert _close(candidate([-1, 1], b), [-0.3, 0.8])
            assert _close(candidate([0.1, 0.5], b), [0.1, 0.5])
            assert _close(candidate([0.0, 0.0], b), [0.0, 0.2])
        """,
    ),
    _problem(
        "boxes_overlap",
        '''
        def boxes_overlap(a, b):
            """Boxes are [x_min, y_min, x_max, y_max]. Return True when the two boxes overlap with a
            positive area (boxes that only touch along an edge or a corner do not overlap).
            >>> boxes_overlap([0, 0, 1, 1], [0.5, 0.5, 2, 2])
            True
            >>> boxes_overlap([0, 0, 1, 1], [1, 0, 2, 1])
            False
            """
        ''',
        "return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]",
        """
        def check(candidate):
            assert candidate([0, 0, 1, 1], [0.5, 0.5, 2, 2]) is True
            assert candidate([0, 0, 1, 1], [1, 0, 2, 1]) is False
            assert candidate([0, 0, 1, 1], [2, 2, 3, 3]) is False
            assert candidate([0, 0, 3, 3], [1, 1, 2, 2]) is True
            assert candidate([0, 0, 1, 1], [0.2, -1, 0.4, 5]) is True
            assert candidate([0, 0, 1, 1], [0.2, 1.5, 0.4, 5]) is False
        """,
    ),
    _problem(
        "bbox_center",
        '''
        def bbox_center(bbox):
            """Return the centre [x, y] of the box [x_min, y_min, x_max, y_max].
            >>> bbox_center([0, 0, 0.2, 0.4])
            [0.1, 0.2]
            """
        ''',
        "return [(bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0]",
        """
        def check(candidate):
            assert _close(candidate([0, 0, 0.2, 0.4]), [0.1, 0.2])
            assert _close(candidate([-1, -1, 1, 3]), [0, 1])
        """,
    ),
    _problem(
        "path_length",
        '''
        import math


        def path_length(waypoints):
            """Return the total length of the polyline through the [x, y] `waypoints` in order
            (0.0 for fewer than two points).
            >>> path_length([[0, 0], [3, 4], [3, 0]])
            9.0
            """
        ''',
        "return float(sum(math.dist(a, b) for a, b in zip(waypoints, waypoints[1:])))",
        """
        def check(candidate):
            assert _close(candidate([[0, 0], [3, 4], [3, 0]]), 9.0)
            assert _close(candidate([[1, 1]]), 0.0)
            assert _close(candidate([]), 0.0)
            assert _close(candidate([[0, 0], [0, 0.5], [0.5, 0.5], [0.5, 0]]), 1.5)
        """,
    ),
    _problem(
        "farthest_pair",
        '''
        import itertools
        import math


        def farthest_pair(objects):
            """`objects` maps at least two names to [x, y]. Return the names of the two objects that
            are farthest apart, as a tuple sorted alphabetically.
            >>> farthest_pair({"a": [0, 0], "b": [1, 0], "c": [0.2, 0.1]})
            ('a', 'b')
            """
        ''',
        """
        best = max(itertools.combinations(sorted(objects), 2), key=lambda p: math.dist(objects[p[0]], objects[p[1]]))
        return tuple(sorted(best))
        """,
        """
        def check(candidate):
            assert tuple(candidate({"a": [0, 0], "b": [1, 0], "c": [0.2, 0.1]})) == ("a", "b")
            assert tuple(candidate({"x": [0, 0], "y": [0, 1]})) == ("x", "y")
            objs = {"red": [0.1, 0.1], "blue": [0.9, 0.9], "green": [0.5, 0.4], "pink": [0.0, 0.2]}
            assert tuple(candidate(objs)) == ("blue", "pink")
        """,
    ),
    _problem(
        "extreme_object",
        '''
        def extreme_object(objects, direction):
            """`objects` maps names to [x, y] (+x right, +y top). `direction` is one of "left",
            "right", "top", "bottom". Return the name of the object farthest in that direction.
            >>> extreme_object({"a": [0, 0], "b": [1, -1]}, "right")
            'b'
            """
        ''',
        """
        if direction == "left":
            return min(objects, key=lambda n: objects[n][0])
        if direction == "right":
            return max(objects, key=lambda n: objects[n][0])
        if direction == "top":
            return max(objects, key=lambda n: objects[n][1])
        if direction == "bottom":
            return min(objects, key=lambda n: objects[n][1])
        raise ValueError(direction)
        """,
        """
        def check(candidate):
            objs = {"a": [0, 0], "b": [1, -1], "c": [0.5, 2], "d": [-0.5, 0.5]}
            assert candidate(objs, "right") == "b"
            assert candidate(objs, "left") == "d"
            assert candidate(objs, "top") == "c"
            assert candidate(objs, "bottom") == "b"
        """,
    ),
    _problem(
        "translate_points",
        '''
        def translate_points(points, dx, dy):
            """Return a new list with every [x, y] point moved by (dx, dy); do not modify the input.
            >>> translate_points([[0, 0], [1, 1]], 0.5, -1)
            [[0.5, -1], [1.5, 0]]
            """
        ''',
        "return [[p[0] + dx, p[1] + dy] for p in points]",
        """
        def check(candidate):
            pts = [[0, 0], [1, 1]]
            assert _close(candidate(pts, 0.5, -1), [[0.5, -1], [1.5, 0]])
            assert pts == [[0, 0], [1, 1]]
            assert _close(candidate([], 1, 1), [])
        """,
    ),
    _problem(
        "centroid",
        '''
        def centroid(points):
            """Return the mean [x, y] of a non-empty list of [x, y] points.
            >>> centroid([[0, 0], [2, 0], [1, 3]])
            [1.0, 1.0]
            """
        ''',
        "return [sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)]",
        """
        def check(candidate):
            assert _close(candidate([[0, 0], [2, 0], [1, 3]]), [1, 1])
            assert _close(candidate([[0.3, -0.2]]), [0.3, -0.2])
            assert _close(candidate([[0, 0], [1, 0], [1, 1], [0, 1]]), [0.5, 0.5])
        """,
    ),
    _problem(
        "point_in_polygon",
        '''
        from shapely.geometry import Point, Polygon


        def point_in_polygon(point, polygon):
            """Return True when the [x, y] `point` lies inside the polygon given by its [x, y]
            vertices; points exactly on the boundary count as inside. Use shapely.
            >>> point_in_polygon([0.5, 0.5], [[0, 0], [1, 0], [1, 1], [0, 1]])
            True
            """
        ''',
        "return bool(Polygon(polygon).covers(Point(point)))",
        """
        def check(candidate):
            sq = [[0, 0], [1, 0], [1, 1], [0, 1]]
            assert candidate([0.5, 0.5], sq) is True
            assert candidate([1.5, 0.5], sq) is False
            assert candidate([1.0, 0.5], sq) is True
            assert candidate([0, 0], sq) is True
            tri = [[0, 0], [1, 0], [0, 1]]
            assert candidate([0.6, 0.6], tri) is False
            assert candidate([0.2, 0.2], tri) is True
        """,
    ),
    _problem(
        "yaw_to_quaternion",
        '''
        import math


        def yaw_to_quaternion(yaw):
            """Return the quaternion [qx, qy, qz, qw] of a rotation by `yaw` radians about the +z axis.
            >>> yaw_to_quaternion(0.0)
            [0.0, 0.0, 0.0, 1.0]
            """
        ''',
        "return [0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)]",
        """
        import math


        def check(candidate):
            assert _close(candidate(0.0), [0, 0, 0, 1])
            assert _close(candidate(math.pi), [0, 0, 1, 0])
            assert _close(candidate(math.pi / 2), [0, 0, math.sqrt(0.5), math.sqrt(0.5)])
            assert _close(candidate(-math.pi / 2), [0, 0, -math.sqrt(0.5), math.sqrt(0.5)])
        """,
    ),
    _problem(
        "quaternion_to_yaw",
        '''
        import math


        def quaternion_to_yaw(q):
            """`q` is a unit quaternion [qx, qy, qz, qw]. Return its rotation about the +z axis (yaw)
            in radians, in the range (-pi, pi].
            >>> quaternion_to_yaw([0, 0, 0, 1])
            0.0
            """
        ''',
        """
        x, y, z, w = q
        yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        return math.pi if yaw <= -math.pi else yaw
        """,
        """
        import math


        def check(candidate):
            assert _close(candidate([0, 0, 0, 1]), 0.0)
            assert _close(candidate([0, 0, math.sqrt(0.5), math.sqrt(0.5)]), math.pi / 2)
            assert _close(candidate([0, 0, -math.sqrt(0.5), math.sqrt(0.5)]), -math.pi / 2)
            assert _close(candidate([0, 0, math.sin(0.3), math.cos(0.3)]), 0.6)
            assert _close(abs(candidate([0, 0, 1, 0])), math.pi)
        """,
    ),
    _problem(
        "spread_evenly",
        '''
        def spread_evenly(n, x_min, x_max, y):
            """Place `n` objects in a horizontal row at height `y` between x_min and x_max, with equal
            gaps between neighbours and at both ends (n + 1 equal gaps). Return the n [x, y]
            positions from left to right.
            >>> spread_evenly(1, 0, 1, 0.5)
            [[0.5, 0.5]]
            """
        ''',
        "return [[x_min + (i + 1) * (x_max - x_min) / (n + 1), y] for i in range(n)]",
        """
        def check(candidate):
            assert _close(candidate(1, 0, 1, 0.5), [[0.5, 0.5]])
            assert _close(candidate(3, 0, 1, 0), [[0.25, 0], [0.5, 0], [0.75, 0]])
            assert _close(candidate(2, -0.3, 0.3, 0.6), [[-0.1, 0.6], [0.1, 0.6]])
            assert _close(candidate(0, 0, 1, 0), [])
        """,
    ),
    _problem(
        "first_free_spot",
        '''
        import math


        def first_free_spot(candidates, obstacles, min_dist):
            """Return the first [x, y] in `candidates` whose distance to every [x, y] in `obstacles`
            is at least `min_dist`, or None when every candidate is too close to some obstacle.
            >>> first_free_spot([[0, 0], [1, 0]], [[0.05, 0]], 0.1)
            [1, 0]
            """
        ''',
        """
        for c in candidates:
            if all(math.dist(c, o) >= min_dist for o in obstacles):
                return c
        return None
        """,
        """
        def check(candidate):
            assert _close(candidate([[0, 0], [1, 0]], [[0.05, 0]], 0.1), [1, 0])
            assert candidate([[0, 0]], [[0, 0.05]], 0.1) is None
            assert _close(candidate([[0, 0], [1, 0]], [], 0.1), [0, 0])
            assert _close(candidate([[0, 0], [0.3, 0], [0.6, 0]], [[0, 0.02], [0.32, 0]], 0.1), [0.6, 0])
        """,
    ),
    _problem(
        "normalize_angle_deg",
        '''
        def normalize_angle_deg(angle):
            """Return the angle (degrees) equivalent to `angle` in the range (-180, 180].
            >>> normalize_angle_deg(270)
            -90
            """
        ''',
        """
        a = angle % 360
        return a - 360 if a > 180 else a
        """,
        """
        def check(candidate):
            assert _close(candidate(270), -90)
            assert _close(candidate(180), 180)
            assert _close(candidate(-180), 180)
            assert _close(candidate(725), 5)
            assert _close(candidate(-190), 170)
            assert _close(candidate(0), 0)
        """,
    ),
    _problem(
        "to_polar",
        '''
        import math


        def to_polar(point, origin):
            """Return (r, theta_deg): the distance from `origin` to `point` and the direction in
            degrees counter-clockwise from +x, in (-180, 180].
            >>> to_polar([0, 2], [0, 0])
            (2.0, 90.0)
            """
        ''',
        """
        dx, dy = point[0] - origin[0], point[1] - origin[1]
        theta = math.degrees(math.atan2(dy, dx))
        return (math.hypot(dx, dy), 180.0 if theta == -180.0 else theta)
        """,
        """
        def check(candidate):
            assert _close(candidate([0, 2], [0, 0]), (2, 90))
            assert _close(candidate([1, 1], [2, 1]), (1, 180))
            assert _close(candidate([1, 0], [2, 1]), (2 ** 0.5, -135))
            assert _close(candidate([3, 4], [0, 0]), (5, 53.13010235415598))
        """,
    ),
    _problem(
        "triangle_vertices",
        '''
        import math


        def triangle_vertices(center, radius):
            """Return the 3 [x, y] vertices of the equilateral triangle inscribed in the circle of
            `radius` around `center`, with the first vertex straight up (+y) from the centre and the
            others following counter-clockwise.
            >>> [[round(v, 3) for v in p] for p in triangle_vertices([0, 0], 1)]
            [[0.0, 1.0], [-0.866, -0.5], [0.866, -0.5]]
            """
        ''',
        """
        pts = []
        for i in range(3):
            a = math.pi / 2 + 2 * math.pi * i / 3
            pts.append([center[0] + radius * math.cos(a), center[1] + radius * math.sin(a)])
        return pts
        """,
        """
        def check(candidate):
            s = 3 ** 0.5 / 2
            assert _close(candidate([0, 0], 1), [[0, 1], [-s, -0.5], [s, -0.5]])
            assert _close(candidate([0.5, 0.5], 0.1), [[0.5, 0.6], [0.5 - 0.1 * s, 0.45], [0.5 + 0.1 * s, 0.45]])
        """,
    ),
    _problem(
        "group_by_color",
        '''
        def group_by_color(names):
            """Object names look like "<color> <kind>", e.g. "red block" or "blue bowl". Return a dict
            mapping each color to the alphabetically sorted list of names with that color.
            >>> group_by_color(["red block", "blue bowl", "red bowl"])
            {'red': ['red block', 'red bowl'], 'blue': ['blue bowl']}
            """
        ''',
        """
        groups = {}
        for name in names:
            groups.setdefault(name.split()[0], []).append(name)
        return {color: sorted(v) for color, v in groups.items()}
        """,
        """
        def check(candidate):
            assert candidate(["red block", "blue bowl", "red bowl"]) == {"red": ["red block", "red bowl"], "blue": ["blue bowl"]}
            assert candidate([]) == {}
            assert candidate(["green bowl", "green block"]) == {"green": ["green block", "green bowl"]}
        """,
    ),
    _problem(
        "objects_in_region",
        '''
        def objects_in_region(objects, region):
            """`objects` maps names to [x, y]; `region` is [x_min, y_min, x_max, y_max]. Return the
            sorted names of the objects inside the region (the border counts as inside).
            >>> objects_in_region({"a": [0.1, 0.1], "b": [2, 2]}, [0, 0, 1, 1])
            ['a']
            """
        ''',
        """
        x0, y0, x1, y1 = region
        return sorted(n for n, (x, y) in objects.items() if x0 <= x <= x1 and y0 <= y <= y1)
        """,
        """
        def check(candidate):
            objs = {"a": [0.1, 0.1], "b": [2, 2], "c": [1, 0], "d": [0.5, -0.1]}
            assert candidate(objs, [0, 0, 1, 1]) == ["a", "c"]
            assert candidate(objs, [-5, -5, 5, 5]) == ["a", "b", "c", "d"]
            assert candidate(objs, [3, 3, 4, 4]) == []
        """,
    ),
    _problem(
        "convex_hull_area",
        '''
        from shapely.geometry import MultiPoint


        def convex_hull_area(points):
            """Return the area covered by the convex hull of the [x, y] points (0.0 when they are
            fewer than three or collinear). Use shapely.
            >>> convex_hull_area([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]])
            1.0
            """
        ''',
        """
        if len(points) < 3:
            return 0.0
        return float(MultiPoint([tuple(p) for p in points]).convex_hull.area)
        """,
        """
        def check(candidate):
            assert _close(candidate([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]]), 1.0)
            assert _close(candidate([[0, 0], [1, 1], [2, 2]]), 0.0)
            assert _close(candidate([[0, 0], [1, 0]]), 0.0)
            assert _close(candidate([[0, 0], [0.4, 0], [0, 0.3], [0.1, 0.1]]), 0.06)
        """,
    ),
    _problem(
        "snap_to_grid",
        '''
        def snap_to_grid(point, cell):
            """Snap the [x, y] `point` to the nearest point of a square grid with spacing `cell`
            that has a grid point at the origin. Return [x, y].
            >>> [round(v, 6) for v in snap_to_grid([0.12, 0.27], 0.1)]
            [0.1, 0.3]
            """
        ''',
        "return [round(point[0] / cell) * cell, round(point[1] / cell) * cell]",
        """
        def check(candidate):
            assert _close(candidate([0.12, 0.27], 0.1), [0.1, 0.3])
            assert _close(candidate([-0.26, 0.04], 0.05), [-0.25, 0.05])
            assert _close(candidate([0.0, 0.0], 0.2), [0.0, 0.0])
            assert _close(candidate([0.94, -0.31], 0.5), [1.0, -0.5])
        """,
    ),
    _problem(
        "denormalize_xy",
        '''
        def denormalize_xy(xy, bounds):
            """Map a point `xy` given in normalised [0, 1] x [0, 1] coordinates onto the workspace
            `bounds` [x_min, x_max, y_min, y_max]: (0, 0) is the bottom left corner and (1, 1) the
            top right. Return [x, y].
            >>> denormalize_xy([0.5, 0.5], [-0.3, 0.3, 0.2, 0.8])
            [0.0, 0.5]
            """
        ''',
        """
        x_min, x_max, y_min, y_max = bounds
        return [x_min + xy[0] * (x_max - x_min), y_min + xy[1] * (y_max - y_min)]
        """,
        """
        def check(candidate):
            b = [-0.3, 0.3, 0.2, 0.8]
            assert _close(candidate([0.5, 0.5], b), [0.0, 0.5])
            assert _close(candidate([0, 0], b), [-0.3, 0.2])
            assert _close(candidate([1, 1], b), [0.3, 0.8])
            assert _close(candidate([0.25, 1], b), [-0.15, 0.8])
        """,
    ),
    _problem(
        "min_pairwise_distance",
        '''
        import math


        def min_pairwise_distance(points):
            """Return the smallest distance between any two of the [x, y] points (at least two).
            >>> min_pairwise_distance([[0, 0], [1, 0], [0, 0.3]])
            0.3
            """
        ''',
        """
        return min(math.dist(points[i], points[j]) for i in range(len(points)) for j in range(i + 1, len(points)))
        """,
        """
        def check(candidate):
            assert _close(candidate([[0, 0], [1, 0], [0, 0.3]]), 0.3)
            assert _close(candidate([[0, 0], [3, 4]]), 5.0)
            assert _close(candidate([[0, 0], [1, 1], [1, 1.01], [5, 5]]), 0.01)
        """,
    ),
    _problem(
        "stack_heights",
        '''
        def stack_heights(n, block_size, table_z):
            """Return the z coordinates of the centres of `n` cubes of edge `block_size` stacked on
            the table whose surface is at `table_z`, from the bottom cube up.
            >>> stack_heights(2, 0.04, 0.0)
            [0.02, 0.06]
            """
        ''',
        "return [table_z + block_size * (i + 0.5) for i in range(n)]",
        """
        def check(candidate):
            assert _close(candidate(2, 0.04, 0.0), [0.02, 0.06])
            assert _close(candidate(3, 0.05, 0.6), [0.625, 0.675, 0.725])
            assert _close(candidate(0, 0.05, 0.6), [])
        """,
    ),
    _problem(
        "offset_in_direction",
        '''
        def offset_in_direction(point, direction, distance):
            """Move the [x, y] `point` by `distance` metres towards `direction`, one of "left", "right",
            "up", "down" (+x right, +y up on the table). Return the new [x, y].
            >>> offset_in_direction([0.1, 0.5], "left", 0.05)
            [0.05, 0.5]
            """
        ''',
        """
        dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, 1), "down": (0, -1)}[direction]
        return [point[0] + dx * distance, point[1] + dy * distance]
        """,
        """
        def check(candidate):
            assert _close(candidate([0.1, 0.5], "left", 0.05), [0.05, 0.5])
            assert _close(candidate([0.1, 0.5], "right", 0.1), [0.2, 0.5])
            assert _close(candidate([0.1, 0.5], "up", 0.2), [0.1, 0.7])
            assert _close(candidate([0.1, 0.5], "down", 0.5), [0.1, 0.0])
        """,
    ),
    _problem(
        "nearest_named_position",
        '''
        import math


        def nearest_named_position(point, named_positions):
            """`named_positions` maps names such as "top left corner" to [x, y]. Return the name of
            the named position closest to the [x, y] `point`.
            >>> nearest_named_position([0.29, 0.79], {"top right corner": [0.3, 0.8], "middle": [0, 0.5]})
            'top right corner'
            """
        ''',
        "return min(named_positions, key=lambda n: math.dist(point, named_positions[n]))",
        """
        def check(candidate):
            named = {"top right corner": [0.3, 0.8], "middle": [0, 0.5], "bottom left corner": [-0.3, 0.2]}
            assert candidate([0.29, 0.79], named) == "top right corner"
            assert candidate([0.05, 0.45], named) == "middle"
            assert candidate([-0.5, 0.0], named) == "bottom left corner"
        """,
    ),
]

# Assign ids in list order (stable: append new problems at the end).
for _i, _p in enumerate(PROBLEMS):
    _p["task_id"] = f"RoboCode/{_i}"


def render_jsonl() -> str:
    keys = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
    return "".join(json.dumps({k: p[k] for k in keys}) + "\n" for p in PROBLEMS)


if __name__ == "__main__":
    JSONL_PATH.write_text(render_jsonl())
    print(f"wrote {len(PROBLEMS)} problems to {JSONL_PATH}")
