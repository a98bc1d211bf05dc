"""The pure parts of incremental sync, table-driven: CSNs, tokens, the per-round plan (settling
windows, refusals), the Active Directory USN guard, member references, scope tests and what
an accesslog window proves (watermark.py, delta.py)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dirsync.dn import dn_key
from dirsync.ldap.config import parse_directories
from dirsync.ldap.delta import (
    LogRecord,
    MemberDelta,
    MemberRefs,
    ancestors,
    bases_of,
    judge_log,
    member_delta,
    member_refs,
    or_chunks,
    outermost,
    parse_log_record,
    within,
)
from dirsync.ldap.errors import FullSyncRequired, LdapError
from dirsync.ldap.filters import at_least, matches_with
from dirsync.ldap.watermark import (
    AdHighWater,
    METHOD_CONTEXTCSN,
    METHOD_ENTRYUSN,
    METHOD_NONE,
    SuffixMarks,
    Token,
    UsnMarks,
    ad_changed_filter,
    ad_guard,
    config_fingerprint,
    context_marks,
    csn_at,
    first_marks,
    first_usn_marks,
    format_token,
    guid_text,
    parse_csn,
    parse_token,
    parse_usn,
    plan_round,
    plan_usn_round,
    unsupported_token,
)

SUFFIX = "dc=example,dc=com"
KEY = dn_key(SUFFIX)
T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)


def csn(second: int, sid: str = "000", micro: int = 0) -> str:
    return f"202611231200{second:02d}.{micro:06d}Z#000000#{sid}#000000"


def config(**keys: Any) -> Any:
    table: dict[str, Any] = {"name": "corp", "preset": "openldap", "urls": "ldap://h",
                             "base_dn": "ou=x,dc=example,dc=com"}
    table.update(keys)
    return parse_directories([table])[0]


# -- CSNs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "20261123120000.000000Z#000000#000#000000",
    "20261123120000.123456Z#00000a#fff#000001",
])
def test_csns_parse(text: str) -> None:
    parsed = parse_csn(text)
    assert parsed.text == text and parsed.at.tzinfo is timezone.utc


@pytest.mark.parametrize("text", [
    "", "20261123120000Z", "20261123120000.000000Z#000000#000",  # OpenLDAP 2.2 forms, cut
    "20261123120000.000000Z#000000#0000#000000", "x" * 40,
])
def test_malformed_csns_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an OpenLDAP CSN"):
        parse_csn(text)


def test_csn_order_and_instants() -> None:
    assert parse_csn(csn(1)) < parse_csn(csn(1, micro=1)) < parse_csn(csn(2))
    assert csn_at(parse_csn(csn(5, micro=7)).at) == "20261123120005.000007Z#000000#000#000000"
    # The lowest CSN of an instant sorts before every change at that instant, any server.
    assert parse_csn(csn_at(parse_csn(csn(5, "fff")).at)) <= parse_csn(csn(5, "001"))


def test_context_marks_keep_one_value_per_server_id() -> None:
    assert context_marks([csn(1, "001"), csn(3, "002"), csn(2, "001")]) == {
        "001": csn(2, "001"), "002": csn(3, "002")}


# -- tokens -----------------------------------------------------------------------------------


def test_tokens_round_trip() -> None:
    token = Token(METHOD_CONTEXTCSN, "ldap://h:389", "abc",
                  (SuffixMarks(SUFFIX, {"000": csn(1)}, csn(0)),), T0,
                  ad=AdHighWater("CN=NTDS Settings,CN=DC1", str(uuid.uuid4()), 42))
    assert parse_token("corp", format_token(token)) == token
    assert parse_token("corp", unsupported_token("why")) == Token(METHOD_NONE, reason="why")
    # Entries to look up while they settle: none known (None) is not an empty list.
    for lookups in ({"id-1": csn(2)}, {}):
        carrying = dataclasses.replace(token, lookups=lookups)
        assert parse_token("corp", format_token(carrying)) == carrying
    assert "lookups" not in format_token(token)


@pytest.mark.parametrize(("text", "why"), [
    ("", "there is none"),
    ("   ", "there is none"),
    ("not json", "not valid JSON"),
    ("[]", "not a version 1 token"),
    ('{"v": 2}', "not a version 1 token"),
    ('{"v": 1, "method": "telepathy"}', "unknown method"),
    ('{"v": 1, "method": "openldap-contextcsn", "config": "x"}', "damaged"),
    ('{"v": 1, "method": "openldap-contextcsn", "server": "s", "config": "c", '
     '"suffixes": [{"dn": "dc=x", "seen": {"000": "yesterday"}}]}', "damaged"),
    ('{"v": 1, "method": "openldap-contextcsn", "server": "s", "config": "c", '
     '"lookups": {"id": "soon"}}', "damaged"),
])
def test_unusable_tokens_require_a_full_sync(text: str, why: str) -> None:
    with pytest.raises(FullSyncRequired, match=why) as info:
        parse_token("corp", text)
    assert info.value.directory == "corp"
    assert not isinstance(info.value, LdapError)  # "do a full sync", not "directory down"


def test_the_fingerprint_follows_what_decides_the_content() -> None:
    base = config_fingerprint(config())
    for same in (config(urls=["ldap://other"], page_size=5, operation_timeout=1),
                 config(base_dn="OU=X, DC=Example,DC=com")):
        assert config_fingerprint(same) == base
    for other in (config(user_filter="(a=b)"), config(group_base_dn="ou=y,dc=example,dc=com"),
                  config(membership="memberUid"), config(attributes={"email": "otherMail"}),
                  config(disabled_method="none"), config(user_object_class="person")):
        assert config_fingerprint(other) != base


# -- planning a round -------------------------------------------------------------------------


def token(seen: dict[str, str], pending: str | None = None,
          since: datetime | None = None) -> Token:
    return Token(METHOD_CONTEXTCSN, "ldap://h:389", "f", (SuffixMarks(SUFFIX, seen, pending),),
                 since)


def plan(tok: Token, seen: dict[str, str], now: datetime = T0, settle: float = 10) -> Any:
    return plan_round("corp", tok, {KEY: (SUFFIX, seen)}, now, settle)


def test_nothing_written_and_nothing_pending_reads_nothing() -> None:
    result = plan(token({"000": csn(1)}), {"000": csn(1)})
    assert result.nothing_to_read and result.next_token == token({"000": csn(1)})


def test_a_change_is_read_from_the_old_mark_and_left_pending() -> None:
    result = plan(token({"000": csn(1)}), {"000": csn(30)})
    assert result.lower == {KEY: csn(1)}
    [marks] = result.next_token.suffixes
    assert marks.seen == {"000": csn(30)}
    assert marks.pending == csn(20)  # 30 s - 10 s settle
    assert result.next_token.pending_since == T0


def test_a_pending_window_is_read_until_settled() -> None:
    tok = token({"000": csn(30)}, csn(20), T0)
    soon = plan(tok, {"000": csn(30)}, now=T0 + timedelta(seconds=3))
    assert soon.lower == {KEY: csn(20)}
    assert soon.next_token.suffixes[0].pending == csn(20)
    assert soon.next_token.pending_since == T0  # the window still counts from then
    later = plan(soon.next_token, {"000": csn(30)}, now=T0 + timedelta(seconds=11))
    assert later.lower == {KEY: csn(20)}  # one last look, now that it has settled
    assert later.next_token.suffixes[0].pending is None
    assert later.next_token.pending_since is None
    assert plan(later.next_token, {"000": csn(30)}).nothing_to_read


def test_new_changes_read_the_unsettled_window_once_more_and_move_it() -> None:
    tok = token({"000": csn(30)}, csn(20), T0)
    result = plan(tok, {"000": csn(50)}, now=T0 + timedelta(seconds=1))
    assert result.lower == {KEY: csn(20)}  # the unsettled changes are read again
    # The server's clock is past 50 when this round reads, so what is older than 40 has
    # settled; the window moves on, whatever dirsync's own clock says.
    assert result.next_token.suffixes[0].pending == csn(40)


def test_a_steady_stream_of_changes_does_not_widen_the_window() -> None:
    tok = token({"000": csn(30)}, csn(20), T0)
    lowers = []
    for step in range(1, 6):
        newest = 30 + 5 * step
        result = plan(tok, {"000": csn(newest)}, now=T0 + timedelta(seconds=step))
        lowers.append(result.lower[KEY])
        tok = result.next_token
        assert tok.suffixes[0].pending == csn(newest - 10)
    assert lowers == [csn(20), csn(25), csn(30), csn(35), csn(40)]


def test_without_a_settle_window_nothing_stays_pending() -> None:
    result = plan(token({"000": csn(1)}), {"000": csn(30)}, settle=0)
    assert result.next_token.suffixes[0].pending is None
    assert result.next_token.pending_since is None


def test_several_providers_read_from_the_oldest_moved_mark() -> None:
    tok = token({"001": csn(10, "001"), "002": csn(20, "002")})
    result = plan(tok, {"001": csn(40, "001"), "002": csn(20, "002")})
    assert result.lower == {KEY: csn(10, "001")}
    result = plan(tok, {"001": csn(40, "001"), "002": csn(45, "002")})
    assert result.lower == {KEY: csn(10, "001")}


@pytest.mark.parametrize(("seen", "why"), [
    ({"000": csn(1)}, "went back"),
    ({"000": csn(9), "001": csn(9, "001")}, "server id.s. 001 wrote"),
    ({"001": csn(9, "001")}, "server id"),
])
def test_marks_that_cannot_be_continued(seen: dict[str, str], why: str) -> None:
    with pytest.raises(FullSyncRequired, match=why):
        plan(token({"000": csn(5)}), seen)


def test_other_databases_cannot_be_continued() -> None:
    with pytest.raises(FullSyncRequired, match="other databases"):
        plan_round("corp", token({"000": csn(1)}),
                   {"o=other": ("o=other", {"000": csn(1)})}, T0, 10)


def test_the_first_token_leaves_the_newest_changes_pending() -> None:
    suffixes, since = first_marks([(SUFFIX, {"000": csn(30), "001": csn(12, "001")})], T0, 10)
    assert suffixes[0].pending == csn(20) and since == T0
    assert first_marks([(SUFFIX, {"000": csn(30)})], T0, 0) == (
        (SuffixMarks(SUFFIX, {"000": csn(30)}),), None)


# -- Active Directory -------------------------------------------------------------------------

DC1 = "CN=NTDS Settings,CN=DC1,CN=Servers,CN=Site,CN=Sites,CN=Configuration,DC=corp,DC=example"
INVOCATION = "7a1b3c44-0d7f-4c8e-9a51-2b0e3f6a9d10"


@pytest.mark.parametrize(("current", "why"), [
    (AdHighWater(DC1, INVOCATION, 100), None),
    (AdHighWater(DC1.lower(), INVOCATION.upper(), 250), None),
    (AdHighWater(DC1.replace("DC1", "DC2"), INVOCATION, 250), "from domain controller"),
    (AdHighWater(DC1, "00000000-0000-0000-0000-000000000001", 250), "restored from backup"),
    (AdHighWater(DC1, INVOCATION, 99), "went back"),
])
def test_the_invocation_id_guard(current: AdHighWater, why: str | None) -> None:
    reason = ad_guard(AdHighWater(DC1, INVOCATION, 100), current)
    if why is None:
        assert reason is None
    else:
        assert reason is not None and why in reason


def test_ad_usn_filter_and_guids() -> None:
    assert ad_changed_filter(AdHighWater(DC1, INVOCATION, 100)) == "(uSNChanged>=101)"
    value = uuid.UUID(INVOCATION)
    assert guid_text(value.bytes_le) == INVOCATION  # AD's little-endian field layout
    with pytest.raises(ValueError, match="16 bytes"):
        guid_text(b"\x00" * 15)


# -- member references, scope, filters --------------------------------------------------------


def test_member_references_are_parsed_like_the_full_read() -> None:
    refs = member_refs(["UID=Comma\\2CUser, OU=People,dc=example,dc=com", "not a dn", " ",
                        "uid=a,dc=example,dc=com"], "member")
    assert refs == MemberRefs(dn_keys=frozenset({"uid=comma\\,user,ou=people,dc=example,dc=com",
                                                 "uid=a,dc=example,dc=com"}), unparsable=2)
    assert member_refs(["uid=b,dc=x#'0101'B"], "uniqueMember").dn_keys == {"uid=b,dc=x"}
    assert member_refs([" BOB ", "Jörg", ""], "memberUid") == MemberRefs(
        name_keys=frozenset({"bob", "jörg"}))


def test_scope_tests() -> None:
    people = "ou=people,dc=example,dc=com"
    assert within(people, people) and within("uid=a," + people, people)
    assert not within("uid=a,ou=xpeople,dc=example,dc=com", people)  # not a suffix match
    assert bases_of("uid=a," + people, [people, "dc=example,dc=com", "ou=groups"]) == {
        people, "dc=example,dc=com"}
    assert outermost(["uid=a,ou=b,dc=c", "ou=b,dc=c", "ou=d,dc=c", "ou=b,dc=c"]) == [
        "ou=b,dc=c", "ou=d,dc=c"]


def test_ancestors_keep_escaped_values_whole() -> None:
    assert ancestors("cn=Doe\\, John+uid=jd,ou=Sales\\2C EMEA,dc=example") == [
        "cn=Doe\\, John+uid=jd,ou=Sales\\, EMEA,dc=example", "ou=Sales\\, EMEA,dc=example",
        "dc=example"]
    assert [dn_key(a) for a in ancestors("ou=München,dc=x")] == ["ou=münchen,dc=x", "dc=x"]


def test_or_chunks_and_filter_values() -> None:
    parts = [f"(a={n})" for n in range(5)]
    assert list(or_chunks(parts, 2)) == ["(|(a=0)(a=1))", "(|(a=2)(a=3))", "(a=4)"]
    assert at_least("entryCSN", "2026*(x)") == "(entryCSN>=2026\\2a\\28x\\29)"
    assert matches_with("memberUid", "caseIgnoreIA5Match", "a*") == (
        "(memberUid:caseIgnoreIA5Match:=a\\2a)")


# -- the accesslog ----------------------------------------------------------------------------


def raw(**values: str | list[str]) -> dict[str, list[bytes]]:
    return {k.lower(): [v.encode() for v in ([x] if isinstance(x, str) else x)]
            for k, x in values.items()}


@pytest.mark.parametrize(("values", "expected"), [
    (raw(reqType="delete", reqDN="uid=a,dc=x", reqEntryUUID="ABC", entryCSN=csn(1)),
     LogRecord("delete", "uid=a,dc=x", "abc", csn(1))),
    (raw(reqType="modify", reqDN="cn=g,dc=x", reqEntryUUID="abc", entryCSN=csn(1),
         reqMod=["member:+ uid=a,dc=x", "entryCSN:= x"]),
     LogRecord("modify", "cn=g,dc=x", "abc", csn(1), (b"member:+ uid=a,dc=x", b"entryCSN:= x"))),
    # OpenLDAP 2.4: no reqEntryUUID; `logoldattr entryUUID` puts it among the old values.
    (raw(reqType="modrdn", reqDN="uid=a,dc=x", reqOld=["uid: a", "entryUUID: Def"],
         entryCSN=csn(2)), LogRecord("modrdn", "uid=a,dc=x", "def", csn(2))),
    (raw(reqType="delete", reqDN="uid=a,dc=x", entryCSN=csn(1)), "logoldattr"),
    (raw(reqType="search", reqDN="dc=x", entryCSN=csn(1)), "records a search"),
    (raw(reqType="modify", reqDN="uid=a,dc=x", reqEntryUUID="abc"), "no entryCSN"),
])
def test_log_records(values: dict[str, list[bytes]], expected: LogRecord | str) -> None:
    record = parse_log_record(values, "reqStart=1,cn=accesslog", "entryuuid")
    if isinstance(expected, str):
        assert isinstance(record, str) and expected in record
    else:
        assert record == expected


def test_a_log_that_misses_a_change_is_not_trusted() -> None:
    records = [LogRecord("modify", "uid=a,dc=x", "a", csn(1)),
               LogRecord("modrdn", "ou=b,dc=x", "b", csn(2)),
               LogRecord("delete", "uid=c,dc=x", "c", csn(3))]
    verdict = judge_log(records, changed_csns={"a": csn(1)}, newest_csns=[csn(3)])
    assert verdict.usable
    assert verdict.touched == {"a", "b", "c"} and verdict.renamed == {"b": {"ou=b,dc=x"}}
    missing_change = judge_log(records, changed_csns={"z": csn(9)}, newest_csns=[])
    assert not missing_change.usable and "entry z" in missing_change.why_not
    missing_delete = judge_log(records[:2], changed_csns={"a": csn(1)}, newest_csns=[csn(3)])
    assert not missing_delete.usable and "deletes included" in missing_delete.why_not


def modify(n: int, *mods: str, kind: str = "modify") -> LogRecord:
    return LogRecord(kind, "cn=g,dc=x", "g", csn(n), tuple(m.encode() for m in mods))


def test_member_values_added_and_removed_one_by_one_are_the_change() -> None:
    delta = member_delta([
        modify(1, "member:+ uid=A,dc=x", "description:= new", "entryCSN:= x"),
        # One write may delete a value and add it back in another spelling: the last wins.
        modify(2, "member:- uid=b,dc=x", "Member:- UID=c, dc=x", "member:+ uid=c,dc=x"),
        modify(3, "modifyTimestamp:= 20261123000000Z"),
    ], "member")
    assert delta == MemberDelta(MemberRefs(dn_keys=frozenset({dn_key("uid=a,dc=x"),
                                                                dn_key("uid=c,dc=x")})),
                                MemberRefs(dn_keys=frozenset({dn_key("uid=b,dc=x")})))
    assert member_delta([], "member") == MemberDelta(MemberRefs(), MemberRefs())


@pytest.mark.parametrize("records", [
    [modify(1, "member:= uid=a,dc=x")],  # replace: the old list is not in the log
    [modify(1, "member:-")],  # the whole attribute deleted
    [modify(1, "member:+ uid=a,dc=x", kind="add")],  # the group itself is new
])
def test_member_lists_the_log_cannot_tell_are_read_whole(records: list[LogRecord]) -> None:
    assert member_delta(records, "member") is None


def test_values_written_twice_are_left_to_the_server() -> None:
    # CSNs are taken when a write starts, so the log's order of two writes to one value may
    # not be the order they took effect in: such values are asked about, not guessed.
    delta = member_delta([modify(1, "member:+ uid=a,dc=x", "member:+ uid=b,dc=x"),
                          modify(2, "member:- UID=a,dc=x"),
                          modify(3, "", kind="modrdn"),  # a rename leaves the values alone
                          modify(4, "member:- uid=c,dc=x", "member:+ uid=A,dc=x")], "member")
    a, b, c = (dn_key(f"uid={n},dc=x") for n in "abc")
    assert delta is not None
    assert delta.added.dn_keys == {b} and delta.removed.dn_keys == {c}
    assert delta.unsure == ((a, "uid=A,dc=x"),)
    assert delta.settled({a}, "member") == MemberDelta(
        MemberRefs(dn_keys=frozenset({a, b})), MemberRefs(dn_keys=frozenset({c})))
    assert delta.settled(set(), "member") == MemberDelta(
        MemberRefs(dn_keys=frozenset({b})), MemberRefs(dn_keys=frozenset({a, c})))
    names = member_delta([modify(1, "memberUid:+ Al"), modify(2, "memberUid:- al")],
                         "memberUid")
    assert names is not None and names.unsure == (("al", "al"),)
    assert names.settled({"al"}, "memberUid").added.name_keys == {"al"}


def test_member_deltas_of_other_membership_attributes() -> None:
    unique = member_delta([modify(1, "uniqueMember:+ uid=a,dc=x", "member:+ uid=z,dc=x",
                                  "uniqueMember:+ not a dn")], "uniqueMember")
    assert unique == MemberDelta(MemberRefs(dn_keys=frozenset({dn_key("uid=a,dc=x")})),
                                 MemberRefs())
    # uid=a#'0101'B and uid=a are two values naming one entry: the list is read whole.
    assert member_delta([modify(1, "uniqueMember:- uid=a,dc=x#'0101'B")], "uniqueMember") is None
    names = member_delta([modify(1, "memberUid:+ Alice", "memberUid:- bob")], "memberUid")
    assert names == MemberDelta(MemberRefs(name_keys=frozenset({"alice"})),
                                MemberRefs(name_keys=frozenset({"bob"})))
    undecodable = LogRecord("modify", "cn=g", "g", csn(1), (b"member:+ uid=\xff,dc=x",))
    assert member_delta([undecodable], "member") == MemberDelta(MemberRefs(), MemberRefs())


def test_dataclasses_are_frozen_where_they_are_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MemberRefs().unparsable = 1  # type: ignore[misc]


def test_the_pure_modules_never_load_ldap3() -> None:
    # Until setup.cfg's import contracts list these modules, this holds the line for them.
    code = ("import sys, dirsync.ldap.watermark, dirsync.ldap.delta; "
            "sys.exit(sorted(m for m in sys.modules if m == 'ldap3' or "
            "m == 'dirsync.ldap.connection') or 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- 389 DS: entryUSN per backend ---------------------------------------------------------------


def test_usn_rounds_overlap_by_one_and_then_go_quiet() -> None:
    first = first_usn_marks({"userroot": 10})
    plan = plan_usn_round("ds", first, {"userroot": 14})
    assert plan.lower == {"userroot": 11}
    # lastusn counts writes that may not have committed yet: the next round reads the same
    # window again (from the marks this one started with), then nothing.
    again = plan_usn_round("ds", plan.next_marks, {"userroot": 14})
    assert again.lower == {"userroot": 11}
    quiet = plan_usn_round("ds", again.next_marks, {"userroot": 14})
    assert quiet.nothing_to_read
    more = plan_usn_round("ds", quiet.next_marks, {"userroot": 20})
    assert more.lower == {"userroot": 15}


def test_usn_backends_are_planned_separately() -> None:
    marks = first_usn_marks({"userroot": 5, "groups": 7})
    plan = plan_usn_round("ds", marks, {"userroot": 5, "groups": 9})
    assert plan.lower == {"userroot": None, "groups": 8}


@pytest.mark.parametrize(("current", "why"), [
    ({"userroot": 9}, "went back from 10 to 9"),
    ({"otherroot": 10}, "other 389 DS backends"),
    ({"userroot": 10, "otherroot": 1}, "other 389 DS backends"),
])
def test_usn_marks_that_cannot_be_continued(current: dict[str, int], why: str) -> None:
    with pytest.raises(FullSyncRequired, match=why):
        plan_usn_round("ds", first_usn_marks({"userroot": 10}), current)


def test_usn_tokens_round_trip_and_refuse_damage() -> None:
    token = Token(METHOD_ENTRYUSN, "ldap://h:389", "abc",
                  usn=UsnMarks({"userroot": 12, "": -1}, {"userroot": 3, "": -1}))
    assert parse_token("ds", format_token(token)) == token
    damaged = format_token(token).replace('"userroot":12', '"userroot":"twelve"')
    with pytest.raises(FullSyncRequired, match="damaged"):
        parse_token("ds", damaged)
    assert parse_usn(" 42 ", "x") == 42
    with pytest.raises(ValueError, match="below -1"):
        parse_usn("-2", "lastusn")
