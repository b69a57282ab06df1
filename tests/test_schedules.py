import pytest

from attmask_ray.schedules import Schedules, cosine_schedule, scaled_lr, teacher_temperature


def test_cosine_endpoints_and_monotonic():
    total, warm = 50, 10
    vals = [cosine_schedule(s, 1.0, 0.1, total, warm, 0.0) for s in range(total)]
    assert vals[0] == 0.0
    assert vals[warm - 1] == pytest.approx(1.0)  # warm-up end (reference linspace)
    assert vals[warm] == pytest.approx(1.0)  # cosine start
    assert vals[-1] == pytest.approx(0.1)
    assert cosine_schedule(10_000, 1.0, 0.1, total, warm) == pytest.approx(0.1)  # clamp
    assert all(a < b for a, b in zip(vals[:warm - 1], vals[1:warm]))
    assert all(a >= b for a, b in zip(vals[warm:], vals[warm + 1:]))


def test_cosine_matches_reference_warmup():
    # reference warm-up is np.linspace(start, base, warmup_iters)
    warm = 5
    expected = [0.2 + (1.0 - 0.2) * i / (warm - 1) for i in range(warm)]
    got = [cosine_schedule(i, 1.0, 0.0, 20, warm, 0.2) for i in range(warm)]
    assert got == pytest.approx(expected)


def test_teacher_temperature():
    spe = 4
    assert teacher_temperature(0, spe, 0.04, 0.07, 30) == pytest.approx(0.04)
    assert teacher_temperature(29 * spe, spe, 0.04, 0.07, 30) == pytest.approx(0.07)
    assert teacher_temperature(30 * spe + 3, spe, 0.04, 0.07, 30) == pytest.approx(0.07)
    assert teacher_temperature(3, spe) == teacher_temperature(0, spe)  # per epoch
    vals = [teacher_temperature(s, spe) for s in range(0, 40 * spe, spe)]
    assert all(a <= b for a, b in zip(vals, vals[1:]))
    assert teacher_temperature(0, spe, 0.04, 0.07, 0) == pytest.approx(0.07)


def test_schedules_dataclass():
    spe, epochs = 3, 40
    s = Schedules(lr=scaled_lr(5e-4, 512), epochs=epochs, steps_per_epoch=spe,
                  momentum_teacher=0.996)
    assert s.lr == pytest.approx(1e-3)
    last = s.total_steps - 1
    assert s.at(0).lr == 0.0
    assert s.at(10 * spe).lr == pytest.approx(1e-3)
    assert s.at(last).lr == pytest.approx(1e-6)
    assert s.at(0).wd == pytest.approx(0.04) and s.at(last).wd == pytest.approx(0.4)
    assert s.at(0).momentum == pytest.approx(0.996) and s.at(last).momentum == pytest.approx(1.0)
    assert s(0).teacher_temp == pytest.approx(0.04)
    assert s(30 * spe).teacher_patch_temp == pytest.approx(0.07)
    moms = [s.at(i).momentum for i in range(s.total_steps)]
    wds = [s.at(i).wd for i in range(s.total_steps)]
    assert all(a <= b for a, b in zip(moms, moms[1:]))
    assert all(a <= b for a, b in zip(wds, wds[1:]))
