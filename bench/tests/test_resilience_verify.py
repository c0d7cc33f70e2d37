"""The ledger check of the resilience runs catches lost, doubled and half-applied operations."""

from revbench.resilience import Op, verify

OPENING = [(1, 1, "opening", 100_000), (2, 2, "opening", 100_000)]


def deposit(seq, outcome, entry_ids=()):
    return Op(seq=seq, kind="deposit", wallet=1, to_wallet=None, key=None, outcome=outcome, entry_ids=entry_ids)


def transfer(seq, outcome, entry_ids=()):
    return Op(seq=seq, kind="transfer", wallet=1, to_wallet=2, key="k", outcome=outcome, entry_ids=entry_ids)


def test_an_acknowledged_deposit_in_the_ledger_passes():
    ledger = OPENING + [(3, 1, "deposit", 5)]
    result = verify([deposit(5, "acked", (3,))], ledger, 200_005)
    assert result["ok"] and result["lost_acknowledged"] == 0


def test_an_acknowledged_deposit_missing_from_the_ledger_is_lost():
    result = verify([deposit(5, "acked", (3,))], OPENING, 200_000)
    assert not result["ok"] and result["lost_acknowledged"] == 1


def test_an_unanswered_operation_may_or_may_not_be_applied_but_never_twice():
    once = verify([deposit(7, "unanswered")], OPENING + [(3, 1, "deposit", 7)], 200_007)
    twice = verify([deposit(7, "unanswered")], OPENING + [(3, 1, "deposit", 7), (4, 1, "deposit", 7)], 200_014)
    assert once["ok"]
    assert not twice["ok"] and twice["applied_twice"] == 1


def test_a_transfer_with_one_leg_is_half_applied():
    ledger = OPENING + [(3, 1, "transfer_out", 9)]
    result = verify([transfer(9, "unanswered")], ledger, 199_991)
    assert not result["ok"] and result["half_transfers"] == 1


def test_an_entry_on_the_wrong_wallet_is_reported():
    ledger = OPENING + [(3, 2, "transfer_out", 9), (4, 1, "transfer_in", 9)]
    result = verify([transfer(9, "acked", (3, 4))], ledger, 200_000)
    assert result["wrong_entries"] == 1


def test_balances_that_do_not_add_up_to_the_ledger_fail_conservation():
    result = verify([], OPENING, 200_001)
    assert not result["money_conserved"] and not result["ok"]
