"""Load balancing in the simulator (bench.balance): moves that never leave clients without a copy,
noisy hosts that do not make services flap, and holds and limits a later master honours."""

from bench.balance import run
from rais.wire import Load
from tests.test_assignment import cluster, hid, rows


def test_a_busy_host_moves_its_service_once_and_clients_always_find_a_copy():
    assert run("busy", seconds=300) == run("busy", seconds=300, serves_after=0.0)
    outcome = run("busy", seconds=300)
    assert (outcome.moves, outcome.total_gap) == (1, 0.0)


def test_a_new_copy_that_never_answers_is_released_and_the_busy_one_keeps_serving():
    slow = run("busy", seconds=300, serves_after=3.0)  # a server slower to come up than its probe allows
    lies = run("busy", seconds=300, serves_after=None)  # a start that exits 0 and serves nothing
    assert slow.total_gap == lies.total_gap == 0.0
    assert lies.moves <= 3  # one try per move_hold (120 s), each on a host with room


def test_hosts_that_all_wander_around_the_limit_do_not_pass_a_service_around():
    assert run("wandering", seconds=600).moves == 0


def answer_where_assigned(sim):
    sim.probe_answer = lambda order: "ok" if rows(sim)[order.key[0].host].assigned else "critical"


def test_the_move_hold_is_in_the_tables_so_a_new_master_honours_it():
    from rais.wire.rows import PolicyRow

    sim = cluster(roles=("master", "active", "standby", "standby"), policies=(PolicyRow("web", 1, 800, None),),
                  balance_after=3.0, move_hold=60.0)
    cpu = {n: 100 for n in range(1, 5)}
    sim.load_of = lambda host: Load(cpu[host.host], 0, 0)
    answer_where_assigned(sim)
    sim.run(3)
    cpu[2] = 900
    sim.run_until(lambda: rows(sim)[2].assigned is False, 20)
    (holder,) = [h for h, r in rows(sim).items() if r.assigned]
    moved_at = rows(sim)[holder].moved_ms / 1000  # when it was placed there, in the tables
    assert moved_at > 0
    sim.kill(hid(1))  # a new master, with none of the old one's memory but the tables
    sim.run_until(lambda: len(sim.masters()) == 1 and sim.masters()[0].id != hid(1), 20)
    answer_where_assigned(sim)
    cpu[2], cpu[holder] = 100, 900
    sim.run(moved_at + 50 - sim.clock.seconds())
    assert [h for h, r in rows(sim).items() if r.assigned] == [holder]  # held
    sim.run_until(lambda: not rows(sim)[holder].assigned, 30)
    assert sim.clock.seconds() >= moved_at + 60


def test_a_creep_over_the_limit_is_written_at_once_and_acted_on_after_balance_after():
    from rais.wire.rows import PolicyRow

    sim = cluster(roles=("master", "active", "standby"), policies=(PolicyRow("web", 1, 800, None),),
                  balance_after=30.0, move_hold=120.0)
    cpu = {1: 100, 2: 770, 3: 100}
    sim.load_of = lambda host: Load(cpu[host.host], 0, 0)
    answer_where_assigned(sim)
    sim.run(40)
    for _ in range(4):  # 0.77 to 0.81, a point a few seconds: each under CPU_STEP, the last over 0.8
        cpu[2] += 10
        sim.run(3)
    crossed = sim.clock.seconds() - 3
    master = sim.masters()[0].node
    assert next(r.cpu_permille for r in master.tables.table("cpu") if r.host == hid(2)) == 810
    took = sim.run_until(lambda: not rows(sim)[2].assigned, 60)
    assert 30 <= sim.clock.seconds() - crossed <= 33, took
