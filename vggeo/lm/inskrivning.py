"""Inskrivning: properties, ownership, acquisitions, rights, mortgages, notes, leaseholds, owners.

:func:`read_inskrivning` streams each information set of an inskrivning delivery into the tables of
``docs/contracts.md`` (Inskrivning). Every table carries ``object_id`` (the inskrivningsfastighet
that "delete, then add" works on) and ``property_id`` (``Fastighetsreferens/objektidentitet``).

Personal data
    Personnummer, names of natural persons and their addresses are **redacted by default** (the
    columns are present and empty); ``personal_data=True`` keeps them. Owners are linked by
    ``owner_key``: ``org:<organisationsnummer>`` for organisations (not personal data) and
    ``pnr:<hash>`` for persons — an HMAC-SHA256 of the personnummer in its 13-character form
    (``ÅÅÅÅMMDD-NNNN``, the century derived when only 10 digits come) under a **secret** the
    caller supplies (``owner_secret``). A store generates its secret at creation (or takes the
    operator's, :data:`vggeo.store.secret.OWNER_SECRET_ENV`) and keeps it in its own metadata, so keys are stable
    across the deliveries of one store, differ between stores, and cannot be reversed by
    brute force with this source alone (a plain hash of the ~10⁸ plausible numbers can). Without
    a secret (``vggeo read``) a random one is drawn per run: keys then link rows within that run
    only. A delivery ordered *without personnummer* keys persons by ``own:<hash>`` of their name
    and address under the same secret. The keys are pseudonymous, not anonymous: treat a store
    holding them (and its secret) as personal data under GDPR.

Skyddad personuppgift
    An owner whose surname reads ``SKYDDAD PERSONUPPGIFT`` (and whose personnummer and names were
    removed) is flagged ``protected=True`` and has no ``owner_key``; the store removes such persons.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
from tqdm import tqdm

from vggeo.errors import InputError, IntegrityError
from vggeo.lm import mapping as M
from vggeo.lm._records import ANOTHER_VALUE, Extractor, identities, typed_frame
from vggeo.lm.package import (
    SET_READERS,
    DataFile,
    Delivery,
    iter_members,
    open_delivery,
    root_attributes,
)

__all__ = [
    "InskrivningData",
    "read_inskrivning",
    "owner_key",
    "normalise_personnummer",
    "TABLES",
]

TABLES = (
    "inskrivningsfastighet",
    "agande",
    "forvarv",
    "fang",
    "overlatelse",
    "avtalsrattighet",
    "inteckning",
    "anteckning",
    "tomtrattsupplatelse",
    "persons",
    "organisations",
)

#: Set → the tables it fills.
SET_TABLES = {
    "inskrivningsfastighet": ("inskrivningsfastighet",),
    "inskrivet_agande": ("agande", "forvarv", "fang", "overlatelse"),
    "inskrivetagande": ("agande", "forvarv", "fang", "overlatelse"),  # M.SET_ALIASES
    "avtalsrattighet": ("avtalsrattighet",),
    "inteckning": ("inteckning",),
    "anteckning": ("anteckning",),
    "tomtrattsupplatelse": ("tomtrattsupplatelse",),
    "folkbokford_person_organisation": ("persons", "organisations"),
}

#: Environment variable an operator may set to supply the owner-key secret of a new store
#: (any string; at least 16 characters). Otherwise a store draws 32 random bytes at creation.
_PERSONAL_KINDS = ("personal", "address")
_KEY_HEX = 32  # 128 bits of the HMAC: collisions are out of reach for any register


def _secret_bytes(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _records_by_table() -> dict[str, M.Record]:
    out: dict[str, M.Record] = {}

    def walk(r: M.Record) -> None:
        out.setdefault(r.table, r)
        for c in r.children:
            walk(c)

    for recs in M.INSKRIVNING.records.values():
        for r in recs:
            walk(r)
    return out


_RECORDS = _records_by_table()


def _digits(text: str) -> str:
    """The ASCII digits of ``text`` (``str.isdigit`` also takes ³ and ١, which ``int`` refuses)."""
    return "".join(ch for ch in text if "0" <= ch <= "9")


def _is_orgnr(num: str) -> bool:
    digits = _digits(num)
    if len(digits) == 12 and digits.startswith("16"):  # the 16-prefixed 12-digit orgnr form
        digits = digits[2:]
    # Organisation numbers: 10 digits whose third digit is ≥ 2 (a "month" no person has).
    return len(digits) == 10 and int(digits[2]) >= 2


def normalise_personnummer(num: str, *, today: date | None = None) -> str:
    """A personnummer (or samordningsnummer) in its 13-character form ``ÅÅÅÅMMDD-NNNN``.

    10-digit forms get their century the way Skatteverket writes them: ``-`` means under 100
    years old, ``+`` means 100 or older (the latest matching year not after ``today``). A form
    that is neither 10 nor 12 digits is returned as its digits, prefixed ``?`` (still keyed,
    never merged with a well-formed number).
    """
    text = str(num).strip()
    digits = _digits(text)
    if len(digits) == 12:
        return f"{digits[:8]}-{digits[8:]}"
    if len(digits) == 10:
        year = (today or date.today()).year
        yy = int(digits[:2])
        full = year - ((year - yy) % 100)
        if "+" in text:
            full -= 100
        return f"{full:04d}{digits[2:6]}-{digits[6:]}"
    return "?" + digits


def owner_key(
    idnumber: str | None, secret: bytes | str | None = None, *, organisation: bool | None = None
) -> str | None:
    """The owner key of a personnummer or organisationsnummer (None for none).

    Parameters
    ----------
    idnumber
        Personnummer (10 or 12 digits, with or without separator) or organisationsnummer.
    secret
        The store's owner-key secret. Required for persons: keys of persons are an HMAC under
        it. Organisations are keyed by their number, which is public.
    organisation
        The kind the delivery gives; by default told apart by the number (third digit ≥ 2).
        False keys any number as a person's. True keys an organisation number as one, but a
        personnummer is never written into a key in clear: it is keyed as a person's (a dödsbo,
        a sole trader's firm).
    """
    if idnumber is None or pd.isna(idnumber) or not str(idnumber).strip():
        return None
    num = str(idnumber).strip()
    org = _is_orgnr(num) if organisation is None else organisation and _is_orgnr(num)
    if org:
        digits = _digits(num)[-10:]
        return f"org:{digits[:6]}-{digits[6:]}"
    if secret is None:
        raise ValueError("owner_key needs the store's secret for a personnummer")
    full = normalise_personnummer(num)
    mac = hmac.new(_secret_bytes(secret), b"pnr\0" + full.encode(), hashlib.sha256)
    return "pnr:" + mac.hexdigest()[:_KEY_HEX]


def _norm_text(v: object) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    return " ".join(str(v).split()).casefold()


def name_key(parts: tuple, secret: bytes | str) -> str | None:
    """The key of a person delivered without personnummer: HMAC of name and address.

    ``parts`` are (first name, last name, address, postal code, postal town); None when all
    are empty (nothing to key on).
    """
    norm = [_norm_text(p) for p in parts]
    if not any(norm):
        return None
    mac = hmac.new(_secret_bytes(secret), b"own\0" + "\x1f".join(norm).encode(), hashlib.sha256)
    return "own:" + mac.hexdigest()[:_KEY_HEX]


@dataclass
class InskrivningData:
    """What :func:`read_inskrivning` returns: one frame per table (contracts.md: Inskrivning)."""

    frames: dict[str, pd.DataFrame]
    unmapped: Counter = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    #: Set → the identities (``object_id``) of every exchange object its files held, rows or not:
    #: a change replaces these objects in the set's tables (seed 003), even one whose set is now
    #: empty (its last mortgage cancelled, say).
    members: dict[str, list[str]] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return dict(self.frames)

    @property
    def subsets(self) -> pd.DataFrame | None:
        """``object_id``, ``subset`` (the set's name) of every exchange object read, or None.

        The store's ``subsets`` frame: an inskrivning object is replaced per information set.
        """
        if not self.members:
            return None
        pairs = [(i, s) for s, ids in self.members.items() for i in ids]
        return pd.DataFrame(pairs, columns=["object_id", "subset"]).astype("string")

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.frames[name]

    def __getattr__(self, name: str) -> pd.DataFrame:
        frames = self.__dict__.get("frames", {})
        if name in frames:
            return frames[name]
        raise AttributeError(name)


def _owners(
    df: pd.DataFrame,
    rec: M.Record,
    *,
    personal_data: bool,
    is_org: pd.Series | None,
    secret: bytes | str,
) -> pd.DataFrame:
    """Add ``owner_key`` and ``protected``; redact personal columns unless asked."""
    last = df.get("last_name")
    protected = (
        (last.fillna("").str.strip().str.upper() == M.PROTECTED_SURNAME)
        if last is not None
        else pd.Series(False, index=df.index)
    )
    ids = df.get("owner_idnumber", pd.Series(pd.NA, index=df.index, dtype="string"))
    org = is_org if is_org is not None else pd.Series([None] * len(df), index=df.index)
    # An owner the delivery calls an organisation is shown as one only when its number is an
    # organisation number (or it has none). A personnummer is personal data whatever its holder
    # is called (a dödsbo, a sole trader's firm): its names and address are redacted like a
    # person's (owner_key keys it as a person's in any case).
    numbered = (
        ids.notna().to_numpy() & (ids.astype("string").str.strip().fillna("") != "").to_numpy()
    )
    personal_number = pd.Series(
        [bool(n) and not _is_orgnr(str(i)) for i, n in zip(ids, numbered, strict=True)],
        index=df.index,
    )
    said_org = org.astype("boolean").fillna(False).astype(bool)
    demoted = said_org & personal_number
    org = org.mask(demoted, False)
    keys = [
        None
        if p
        else owner_key(i, secret, organisation=o if o is not None and not pd.isna(o) else None)
        for i, p, o in zip(ids, protected, org, strict=True)
    ]
    # Without personnummer (an order option, seed 003): key persons by name and address.
    missing = [
        k is None and not p and not (o is not None and not pd.isna(o) and o)
        for k, p, o in zip(keys, protected, org, strict=True)
    ]
    if any(missing):
        cols = [
            df[c] if c in df else pd.Series(pd.NA, index=df.index)
            for c in ("first_name", "last_name", "address", "postal_code", "postal_town")
        ]
        for i, parts in enumerate(zip(*cols, strict=True)):
            if missing[i]:
                keys[i] = name_key(parts, secret)
    out = df.copy()
    out.insert(0, "owner_key", pd.Series(keys, index=df.index, dtype="string"))
    out["protected"] = protected.astype(bool)
    person = (
        ~(org.fillna(False).astype(bool)) if is_org is not None else pd.Series(True, index=df.index)
    )
    if personal_data:
        out["personnummer"] = ids.where(person)
    out = out.drop(columns=["owner_idnumber"], errors="ignore")
    rec_fields = {f.column: f.kind for f in rec.fields}
    for col in out.columns:
        kind = rec_fields.get(col)
        if kind in _PERSONAL_KINDS and not personal_data:
            if kind == "address":
                # Addresses of organisations are not personal data; of persons they are.
                out[col] = out[col].where(~person)
            else:
                out[col] = pd.Series(pd.NA, index=out.index, dtype="string")
        elif col in _ORGANISATION_TEXT and demoted.any() and not personal_data:
            # an "organisation" with a personnummer: its name and address are a person's
            out[col] = out[col].where(~demoted)
    return out


#: Text columns of an organisation that are a person's data when its number is a personnummer.
_ORGANISATION_TEXT = frozenset(
    {"organisation_name", "care_of", "address", "address_line2", "postal_code", "postal_town"}
)


def _frame(
    table: str,
    rows: list[dict],
    *,
    personal_data: bool,
    file: str | None,
    secret: bytes | str,
    unmapped: Counter | None = None,
) -> pd.DataFrame:
    rec = _RECORDS[table]
    inherited = tuple(f for f in M.EXCHANGE_INHERITED_FIELDS if f.column in rec.inherit)
    extra = tuple(c for c in rec.inherit if c not in {f.column for f in inherited})
    df = typed_frame(rows, rec.fields + inherited, extra=extra + tuple(rec.constants), file=file)
    if "current" in rec.constants:  # agande (true) / tidigareAgande (false)
        df["current"] = df["current"].map({"true": True, "false": False}).astype("boolean")
    if "_lagfart" in df:
        for col, kind in (("_lagfart", "Lagfart"), ("_tomtrattsinnehav", "Tomträttsinnehav")):
            held = df.pop(col)
            # the wrapper's identity fills a missing ownership_id; another one is reported
            other = df["ownership_id"].notna() & held.notna() & (df["ownership_id"] != held)
            if unmapped is not None and other.any():
                path = f"Agande/{col.lstrip('_')}/objektidentitet{ANOTHER_VALUE}"
                unmapped[path] += int(other.sum())
            df["ownership_id"] = df["ownership_id"].fillna(held)
            df["ownership_type"] = df["ownership_type"].mask(
                df["ownership_type"].isna() & held.notna(), kind
            )
    lead = [c for c in ("object_id", "property_id") if c in df]
    df = df[lead + [c for c in df.columns if c not in lead]]
    for c in lead:
        df[c] = identities(df[c])
    if "acquisition_id" in rec.inherit:  # fang, overlatelse: the link to their forvarv row
        df["acquisition_id"] = identities(df["acquisition_id"])
    if table == "agande":
        df = _owners(
            df,
            rec,
            personal_data=personal_data,
            is_org=df["organisation_name"].fillna("").str.len() > 0,  # a blank name is none
            secret=secret,
        )
    elif table == "forvarv":
        ids = df.pop("owner_idnumber")
        df["owner_key"] = pd.Series(
            [owner_key(i, secret) for i in ids], index=df.index, dtype="string"
        )
    elif table == "persons":
        df = _owners(
            df,
            rec,
            personal_data=personal_data,
            is_org=pd.Series(False, index=df.index),
            secret=secret,
        )
        # Without personnummer two persons of the same name at the same address get one key:
        # the delivery carries nothing to tell them apart, and their rows are alike.
        same = df["owner_key"].str.startswith("own:").fillna(False) & df["owner_key"].duplicated()
        df = df[~same.to_numpy()]
    elif table == "organisations":
        df = _owners(
            df,
            rec,
            personal_data=personal_data,
            is_org=pd.Series(True, index=df.index),
            secret=secret,
        )
        df = df.drop(columns=["protected"])
    return df.reset_index(drop=True)


def _is_exchange(rec: M.Record) -> bool:
    """Whether ``rec`` is an exchange object (it has an ``object_id``: seed 003's unit of
    "ta bort – lägg till")."""
    return any(f.column == "object_id" for f in rec.fields)


def _refuse_repeated_objects(
    rows: Iterable[dict], seen: dict[str, str], label: str, line: int | None
) -> None:
    """Raise IntegrityError when an exchange object read from one member (its ``rows``) was
    already met in this set (``seen``: identity → file).

    Seed 003: a set's files hold its information per inskrivningsfastighet, and the metadata
    counts inskrivningsfastigheter per file; "ta bort – lägg till" works per object. The same
    object twice would be applied twice (its rows doubled) or leave the store to pick one copy.
    The identity is the one the mapping read, so it is found in any spelling (element or
    attribute, at any grouping level).
    """
    for row in rows:
        ident = str(row.get("object_id") or "").strip().lower()
        if not ident:
            continue
        first = seen.get(ident)
        if first is None:
            seen[ident] = label
            continue
        also = "" if first == label else f" (also in {first})"
        raise IntegrityError(
            f"inskrivningsfastighet {ident} occurs more than once in the "
            f"set{also}; an extract lists each object once",
            file=label,
            row=line,
            field="objektidentitet",
        )


_FANG_COLUMNS = (
    "acquired_on",
    "acquisition_kind",
    "act_number",
    "share_numerator",
    "share_denominator",
)


def _first_fang(forvarv: pd.DataFrame, fang: pd.DataFrame) -> pd.DataFrame:
    """Forvarv's columns of its first Fång (kept from before ``fang`` was a table of its own).

    A Fastighetsägandeförändring holds a list of Fång; every one is in table ``fang``
    (``acquisition_id`` links them); forvarv repeats the first for simple use.
    """
    out = forvarv.copy()
    if (
        len(fang)
        and "acquisition_id" in fang
        and out["acquisition_id"].notna().all()
        and out["acquisition_id"].is_unique
    ):
        first = fang.drop_duplicates("acquisition_id").set_index("acquisition_id")
        for c in _FANG_COLUMNS:
            out[c] = out["acquisition_id"].map(first[c]).astype(fang[c].dtype)
    elif len(fang):
        # No identities to link by: an exchange object with one Fastighetsägandeförändring
        # (the usual case) takes its first Fång; with several, forvarv leaves them empty and
        # ``fang`` (whose rows then cannot be told apart by acquisition) keeps every one.
        single = ~forvarv["object_id"].duplicated(keep=False)
        first = fang.drop_duplicates("object_id").set_index("object_id")
        for c in _FANG_COLUMNS:
            out[c] = out["object_id"].map(first[c]).where(single).astype(fang[c].dtype)
    return out


def read_inskrivning(
    source: Delivery | str | os.PathLike,
    *,
    personal_data: bool = False,
    sets: list[str] | None = None,
    progress: bool = False,
    owner_secret: bytes | str | None = None,
    check_counts: bool = True,
) -> InskrivningData:
    """Read an inskrivning delivery into one DataFrame per table.

    Parameters
    ----------
    source
        A :class:`~vggeo.lm.package.Delivery` or anything :func:`~vggeo.lm.open_delivery` accepts.
    personal_data
        Keep personnummer, names and addresses of natural persons (default: redacted).
    sets
        Information sets to read (default: all in the delivery).
    progress
        Show a progress bar per file (stderr).
    owner_secret
        The secret owner keys of persons are computed under (a store passes its own). Without
        it a random secret is drawn per opened delivery: keys link the tables read from it and
        are not comparable with any other read or store (nor reversible).
    check_counts
        Refuse a data file from which another number of exchange objects was recognised than
        its metadata lists (or, without metadata, none from a non-empty file), and a set whose
        total differs (:meth:`~vggeo.lm.package.Delivery.check_recognised`): nothing is read
        with fewer objects than the delivery carries.

    Raises
    ------
    IntegrityError
        The counts disagree (``check_counts``), naming the file and the element not understood.

    Returns
    -------
    InskrivningData
        ``frames`` holds the tables of the sets read (see :data:`SET_TABLES`).
    """

    own = not isinstance(source, Delivery)
    d = source if isinstance(source, Delivery) else open_delivery(source)
    secret = owner_secret
    if secret is None:
        # One random secret per opened delivery, so that sets read one by one still link.
        secret = getattr(d, "run_owner_secret", None)
        if secret is None:
            secret = secrets.token_bytes(32)
            try:
                d.run_owner_secret = secret
            except AttributeError:  # a delivery object that takes no attributes: this call only
                pass
    try:
        if d.product != "inskrivning":
            raise InputError(f"{d.path} is a {d.product} delivery, not inskrivning")
        chosen = sets or d.sets
        frames: dict[str, pd.DataFrame] = {}
        members: dict[str, list[str]] = {}
        unmapped: Counter = Counter()
        labels = []
        for s in chosen:
            recs = M.INSKRIVNING.records.get(s)
            if recs is None:
                raise InputError(
                    f"unknown inskrivning information set {s!r}; known: "
                    f"{list(M.INSKRIVNING.records)}",
                    file=d.path,
                )
            ex = Extractor(recs)
            files = d.data_files(s)
            it: Iterable[DataFile] = files
            if progress:
                it = tqdm(files, desc=s, unit="file", disable=None)
            seen: dict[str, str] | None = None if s in M.SETS_WITHOUT_DELETIONS else {}
            exchange = [ex.dict_rows(r.table) for r in recs if _is_exchange(r)]
            total = 0
            for f in it:
                labels.append(f.label)
                n = 0
                for member in iter_members(f):
                    before = [len(t) for t in exchange]
                    n += ex.feed_member(member) > 0  # an exchange object, whatever it holds
                    if seen is not None:
                        for t, k in zip(exchange, before, strict=True):
                            if len(t) > k:
                                _refuse_repeated_objects(t[k:], seen, f.label, member.sourceline)
                ex.unmapped.update(root_attributes(f))
                if check_counts:
                    d.check_recognised(f, n, ex.unknown_records)
                total += n
            if check_counts and files:
                d.check_total(s, total)
            unmapped.update(ex.unmapped)
            for r in recs:  # the exchange objects present, whether or not they have rows
                if _is_exchange(r):
                    ids = (
                        str(row.get("object_id") or "").strip().lower()
                        for row in ex.dict_rows(r.table)
                    )
                    members.setdefault(s, []).extend(i for i in ids if i)
            for table in SET_TABLES.get(s, ()):
                frames[table] = _frame(
                    table,
                    ex.dict_rows(table),
                    personal_data=personal_data,
                    file=files[0].label if files else None,
                    secret=secret,
                    unmapped=unmapped,
                )
        if "forvarv" in frames and "fang" in frames:
            frames["forvarv"] = _first_fang(frames["forvarv"], frames["fang"])
        return InskrivningData(frames, unmapped, labels, members)
    finally:
        if own:
            d.close()


def _read_set(
    delivery: Delivery, set_name: str, *, personal_data: bool = False, **options: Any
) -> InskrivningData:
    """:attr:`vggeo.lm.package.SET_READERS` entry."""
    return read_inskrivning(delivery, sets=[set_name], personal_data=personal_data, **options)


SET_READERS["inskrivning"] = _read_set
