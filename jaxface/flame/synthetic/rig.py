"""Rigging of the synthetic head: joints, skinning weights, blend shapes and pose correctives.

Every field here is a smooth function of the rest-pose vertex positions; eyeballs move
rigidly (their vertices take the value at the eyeball centre), and the two lips of the mouth
slit, which share positions, are told apart by the ``side`` label (+1 upper, -1 lower).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxface.flame.synthetic.surface import (
    BROW_Y,
    CHIN_Y,
    EYE_X,
    EYE_Y,
    MOUTH_Y,
    gauss,
    smoothstep,
)

HEAD, LIP_COPY, EYE_LEFT, EYE_RIGHT = 0, 1, 2, 3  # vertex groups


@dataclasses.dataclass(frozen=True)
class RestMesh:
    """The assembled rest mesh and the per-vertex facts the rig is built from."""

    verts: np.ndarray         # (V, 3)
    normals: np.ndarray       # (V, 3) unit vertex normals
    faces: np.ndarray         # (F, 3)
    group: np.ndarray         # (V,) HEAD / LIP_COPY / EYE_LEFT / EYE_RIGHT
    on_head: np.ndarray       # (V,) True where the skull dominates the neck cylinder
    side: np.ndarray          # (V,) +1 above the lips, -1 below, smooth away from the mouth
    on_slit: np.ndarray       # (V,) the lips' vertices on the mouth slit (both copies)
    mirror: np.ndarray        # (V,) index of the vertex at (-x, y, z) (eyes swap)
    eye_centres: np.ndarray   # (2, 3) left, right
    neck_ring: np.ndarray     # vertex indices of the open neck boundary
    mouth_corners: np.ndarray  # (2, 3) right (-x), left (+x) slit corners




def _rigid_eyes(mesh: RestMesh, field_Vx3: np.ndarray, at_centre) -> np.ndarray:
    """Replaces eyeball rows of a field by its value at the eyeball's centre."""
    out = field_Vx3.copy()
    for g, c in ((EYE_LEFT, mesh.eye_centres[0]), (EYE_RIGHT, mesh.eye_centres[1])):
        out[mesh.group == g] = at_centre(c)
    return out


def joint_regressor(mesh: RestMesh) -> np.ndarray:
    """(5, V): each joint is the mean of a set of vertices, so it follows the shape.

    global: the neck boundary's centre; neck: a ring 4 cm higher up the neck; jaw: midway
    between two patches under the ears (the jaw's hinge); eyes: the eyeball centres.
    """
    v, n = mesh.verts, len(mesh.verts)
    reg = np.zeros((5, n))
    reg[0, mesh.neck_ring] = 1.0
    neck_y = v[mesh.neck_ring, 1].mean() + 0.04
    ring = (np.abs(v[:, 1] - neck_y) < 0.004) & ~mesh.on_head & (mesh.group == HEAD)
    reg[1, ring] = 1.0
    for sx in (-1.0, 1.0):
        hinge = np.array([sx * 0.07, -0.005, -0.005])
        near = np.argsort(np.linalg.norm(v - hinge, axis=1) + 1e3 * (mesh.group != HEAD))[:12]
        reg[2, near] = 1.0
    reg[3, mesh.group == EYE_LEFT] = 1.0
    reg[4, mesh.group == EYE_RIGHT] = 1.0
    return reg / reg.sum(1, keepdims=True)


def skinning_weights(mesh: RestMesh) -> np.ndarray:
    """(V, 5) smooth LBS weights: root at the neck base, jaw below the lips, eyes rigid."""
    x, y, z = mesh.verts.T
    w = np.zeros((len(x), 5))
    root = smoothstep((mesh.verts[mesh.neck_ring, 1].mean() + 0.05 - y) / 0.04)
    # Jaw: below the lips (a sharp split on the slit, a soft one on the cheeks), fading
    # behind the jaw's angle and down the throat.
    band = 0.002 + 0.012 * smoothstep((np.abs(x) - 0.02) / 0.025)
    jaw = smoothstep((MOUTH_Y + band - y) / (2 * band))
    jaw = np.where(mesh.on_slit, (1.0 - mesh.side) / 2, jaw)
    jaw *= smoothstep((z + 0.01) / 0.04) * smoothstep((y - (CHIN_Y - 0.035)) / 0.03)
    jaw *= 1.0 - root
    w[:, 0] = root
    w[:, 2] = jaw
    w[:, 1] = 1.0 - root - jaw
    for g, j in ((EYE_LEFT, 3), (EYE_RIGHT, 4)):
        w[mesh.group == g] = np.eye(5)[j]
    return w / w.sum(1, keepdims=True)


def orthonormal_columns(fields: list[np.ndarray]) -> np.ndarray:
    """Gram-Schmidt (QR) of the flattened fields, in order -> (N, K) orthonormal columns, each
    pointing the way of its source field: a PCA-like basis whose k-th column is the part of
    field k that the earlier ones do not explain."""
    q, r = np.linalg.qr(np.stack([f.reshape(-1) for f in fields], 1))
    return q * np.sign(np.diag(r))


def _orthogonal_basis(fields_KxVx3: list[np.ndarray], rms: np.ndarray) -> np.ndarray:
    """Orthonormal fields scaled so that component k has an RMS vertex displacement of
    ``rms[k]`` metres -> (V, 3, K)."""
    n_verts = fields_KxVx3[0].shape[0]
    return (orthonormal_columns(fields_KxVx3) * rms * np.sqrt(n_verts)).reshape(n_verts, 3, -1)


def _symmetrise(mesh: RestMesh, field: np.ndarray) -> np.ndarray:
    mirrored = field[mesh.mirror] * np.array([-1.0, 1.0, 1.0])
    return 0.5 * (field + mirrored)


def shape_basis(mesh: RestMesh, rng: np.random.Generator, n: int = 300) -> np.ndarray:
    """(V, 3, n) identity basis: smooth fields from coarse to fine with falling variance.

    Sources, in order: linear stretches/shears of the head, then random Gaussian bumps along
    the normal and along random directions with shrinking radii (8 cm down to 1 cm). All but
    every fifth are mirror-symmetric, as faces mostly are. Component k has an RMS displacement
    of 4 mm * (k + 1)^-0.8.
    """
    v, nrm = mesh.verts, mesh.normals
    centre = np.array([0.0, 0.0, 0.0])
    fields = []
    for i in range(3):
        for j in range(3):
            f = np.zeros_like(v)
            f[:, i] = v[:, j] - centre[j]
            fields.append(_rigid_eyes(mesh, f, lambda c, i=i, j=j: np.eye(3)[i] * c[j]))
    head = np.flatnonzero((mesh.group == HEAD) & mesh.on_head)
    radii = np.geomspace(0.08, 0.01, n)
    k = 0
    while len(fields) < n:
        c = v[rng.choice(head)]
        sigma = radii[len(fields)]
        along_normal = k % 2 == 0
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)

        def bump(p, c=c, sigma=sigma):
            return np.exp(-0.5 * np.sum((p - c) ** 2, -1) / sigma**2)

        g = bump(v)[:, None] * (nrm if along_normal else direction)
        g = _rigid_eyes(mesh, g, lambda e, b=bump, d=direction: b(e) * d)
        fields.append(g if k % 5 == 4 else _symmetrise(mesh, g))
        k += 1
    rms = 0.004 * (np.arange(n) + 1.0) ** -0.8
    return _orthogonal_basis(fields, rms)


def expression_basis(mesh: RestMesh, rng: np.random.Generator, n: int = 100) -> np.ndarray:
    """(V, 3, n) expression basis: named facial actions first, then random local motions.

    The actions (lips apart, smile, pucker, lip stretch, brow raise, frown, upper-lip raise,
    lower-lip depress, cheek puff, nose wrinkle, blink, squint, one-sided smiles, mouth shift,
    chin forward) are orthogonalised in that order, so component 0 parts the lips and
    component 1 smiles; every component's RMS falls as (1 + k/4)^-0.6 from 2.5 mm.
    """
    x, y, z = mesh.verts.T
    head = (mesh.group == HEAD) | (mesh.group == LIP_COPY)
    front = smoothstep(z / 0.04) * head
    ax, sx = np.abs(x), np.sign(x)
    upper, lower = smoothstep(mesh.side), smoothstep(-mesh.side)
    lips = gauss(x, y, 0.0, MOUTH_Y, 0.02, 0.01) * front
    corners = gauss(ax, y, 0.025, MOUTH_Y, 0.012, 0.01) * front

    def vec(dx=0.0, dy=0.0, dz=0.0):
        return np.stack(np.broadcast_arrays(dx, dy, dz), -1).astype(np.float64)

    actions = [
        vec(dy=mesh.side * lips) + vec(dy=-0.6 * gauss(x, y, 0, CHIN_Y, 0.03, 0.02) * front),
        vec(dx=0.5 * sx * corners, dy=corners, dz=-0.7 * corners),
        vec(dx=-x / 0.025 * lips, dz=lips),
        vec(dx=sx * corners),
        vec(dy=gauss(ax, y, EYE_X, BROW_Y, 0.025, 0.012) * front),
        vec(dx=-0.6 * sx * (g := gauss(ax, y, 0.015, BROW_Y - 0.003, 0.012, 0.01) * front),
            dy=-g),
        vec(dy=upper * lips, dz=0.3 * upper * lips),
        vec(dy=-lower * lips, dz=0.3 * lower * lips),
        mesh.normals * (gauss(ax, y, 0.045, MOUTH_Y + 0.01, 0.015, 0.015) * front)[:, None],
        vec(dy=gauss(x, y, 0.0, 0.015, 0.01, 0.01) * front),
        vec(dy=-gauss(ax, y, EYE_X, EYE_Y + 0.008, 0.014, 0.005) * front),
        vec(dy=gauss(ax, y, EYE_X, EYE_Y - 0.01, 0.014, 0.006) * front),
        vec(dx=0.5 * sx * corners, dy=corners, dz=-0.7 * corners) * (x > 0)[:, None],
        vec(dx=0.5 * sx * corners, dy=corners, dz=-0.7 * corners) * (x < 0)[:, None],
        vec(dx=lips),
        vec(dz=gauss(x, y, 0.0, CHIN_Y, 0.03, 0.02) * front),
    ]
    face = np.flatnonzero(head & (front > 0.5) & (y < BROW_Y + 0.02) & (y > CHIN_Y - 0.01))
    while len(actions) < n:
        c = mesh.verts[rng.choice(face)]
        sigma = rng.uniform(0.008, 0.02)
        d = rng.normal(size=3)
        g = np.exp(-0.5 * np.sum((mesh.verts - c) ** 2, -1) / sigma**2) * head
        actions.append(g[:, None] * d / np.linalg.norm(d) * (1.0 + 0.5 * mesh.side[:, None]))
    for a in actions:
        a[~head] = 0.0
    rms = 0.0025 * (1.0 + np.arange(n) / 4.0) ** -0.6
    return _orthogonal_basis(actions, rms)


def pose_correctives(mesh: RestMesh, weights_Vx5: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """(V, 3, 36) small pose correctives, local to each joint's region.

    Entry 9*(j-1) + 3*a + b multiplies (R_j - I)[a, b]. Opening the jaw (a rotation about x,
    which sets (R - I)[2, 1] = sin) narrows the cheeks and pulls the chin's skin back; the
    neck gets small random smooth correctives; the rigid eyeballs get none.
    """
    x, y, z = mesh.verts.T
    posedirs = np.zeros((len(x), 3, 36))
    jaw_region = weights_Vx5[:, 2] * (1.0 - weights_Vx5[:, 2]) * 4.0  # the jaw's soft border
    posedirs[:, 0, 9 + 7] = -0.006 * np.sign(x) * jaw_region
    posedirs[:, 2, 9 + 7] = -0.004 * weights_Vx5[:, 2] * smoothstep(-y / 0.08)
    neck = weights_Vx5[:, 0] + weights_Vx5[:, 1] * (1.0 - weights_Vx5[:, 1]) * 4.0
    for e in range(9):
        posedirs[:, :, e] = 0.002 * neck[:, None] * np.tanh(
            mesh.verts @ rng.normal(size=(3, 3)) / 0.05)
    posedirs[mesh.group >= EYE_LEFT] = 0.0
    return posedirs
