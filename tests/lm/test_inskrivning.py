"""Inskrivning: tables per information set, owner links, redaction, protected persons."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from vggeo.errors import InputError
from vggeo.lm import open_delivery, read_bestammelser, read_inskrivning
from vggeo.lm.inskrivning import owner_key

TABLES = {
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
}
PNR = re.compile(r"\b(?:19|20)\d{6}-?\d{4}\b")


@pytest.fixture(scope="module")
def base(inskrivning_deliveries):
    return read_inskrivning(inskrivning_deliveries[0])


def test_every_table_with_keys(base):
    assert set(base.frames) == TABLES
    for name, df in base.frames.items():
        if name in ("persons", "organisations"):
            assert df["owner_key"].notna().all() and df["owner_key"].is_unique
            continue
        assert {"object_id", "property_id"} <= set(df.columns), name
        assert df["object_id"].str.fullmatch(r"[0-9a-f-]{36}").all()
    prop = base.inskrivningsfastighet
    assert prop["object_id"].is_unique and len(prop) == 120
    for name in ("agande", "forvarv", "inteckning"):
        assert set(base[name]["object_id"]) <= set(prop["object_id"])
        # property_id comes from Fastighetsreferens and agrees with the property's own
        merged = base[name].merge(
            prop[["object_id", "property_id"]], on="object_id", suffixes=("", "_p")
        )
        assert (merged["property_id"] == merged["property_id_p"]).all()


def test_types(base):
    a = base.agande
    assert str(a["registered_on"].dtype) == "datetime64[ms]"
    assert (
        str(a["share_numerator"].dtype) == "Int64"
        and (a["share_denominator"] >= a["share_numerator"]).all()
    )
    assert (
        str(base.inteckning["amount"].dtype) == "Float64" and (base.inteckning["amount"] > 0).all()
    )
    assert base.inskrivningsfastighet["municipality"].str.fullmatch(r"\d{4}").all()
    assert str(base.forvarv["acquired_on"].dtype) == "datetime64[ms]"  # written YYYYMMDD


def test_shares_add_up_per_property(base):
    a = base.agande.dropna(subset=["share_numerator"])
    total = (a["share_numerator"] / a["share_denominator"]).groupby(a["object_id"]).sum()
    assert ((total - 1).abs() < 1e-9).all()


def test_personal_data_redacted_by_default(base, inskrivning_deliveries):
    for name, df in base.frames.items():
        assert "personnummer" not in df.columns
        for col in df.columns:
            if df[col].dtype == "string" or df[col].dtype == object:
                assert not df[col].dropna().astype(str).str.contains(PNR).any(), (name, col)
    persons = base.persons
    for col in ("first_name", "last_name", "address", "postal_code", "postal_town", "care_of"):
        assert persons[col].isna().all(), col
    owners = base.agande[base.agande["organisation_name"].isna()]
    assert owners["first_name"].isna().all() and owners["address"].isna().all()
    # organisations are not natural persons: their names and addresses stay
    assert base.organisations["organisation_name"].notna().all()
    assert base.organisations["owner_key"].str.fullmatch(r"org:\d{6}-\d{4}").all()


def test_personal_data_on_request(inskrivning_deliveries):
    full = read_inskrivning(inskrivning_deliveries[0], personal_data=True)
    p = full.persons
    assert p["personnummer"].str.fullmatch(r"\d{12}").all()
    assert p["first_name"].notna().all() and p["address"].notna().all()
    # the owner key is the same with or without personal data, and matches the number
    # (keyed with the secret drawn for this read, which a store would supply instead)
    again = read_inskrivning(inskrivning_deliveries[0], personal_data=True, owner_secret=b"s" * 32)
    assert (
        again.persons["owner_key"]
        == [owner_key(n, b"s" * 32) for n in again.persons["personnummer"]]
    ).all()
    # … and is not the number itself
    assert not any(
        n[2:8] in k or n[-4:] + n[2:8] in k
        for n, k in zip(p["personnummer"], p["owner_key"], strict=False)
    )


def test_owner_keys_link_ownership_to_persons(base):
    a = base.agande
    keys = set(a["owner_key"].dropna())
    known = set(base.persons["owner_key"]) | set(base.organisations["owner_key"])
    assert keys == known  # every owner is in the person/organisation file and vice versa
    assert base.persons["owner_key"].str.startswith("pnr:").all()


def test_protected_person_flagged(base, inskrivning_deliveries):
    a = base.agande
    prot = a[a["protected"]]
    assert len(prot) >= 1  # one protected person (who may own several properties)
    assert prot["owner_key"].isna().all() and prot["last_name"].isna().all()
    full = read_inskrivning(
        inskrivning_deliveries[0], personal_data=True, sets=["inskrivet_agande"]
    )
    assert set(full.agande.loc[full.agande["protected"], "last_name"]) == {"SKYDDAD PERSONUPPGIFT"}
    assert not base.persons["protected"].any()  # a protected person is not in the person file


def test_change_protects_an_owner_and_leaves_orphans(inskrivning_deliveries):
    secret = b"one store's secret"
    base = read_inskrivning(inskrivning_deliveries[0], owner_secret=secret)
    d = open_delivery(inskrivning_deliveries[1])
    change = read_inskrivning(d, owner_secret=secret)
    assert d.extract_type == "change"
    assert change.agande["protected"].sum() >= 1
    # Apply "delete, then add" by hand: owners left without any ownership are orphans that the
    # person file never deletes (seed 003) — the store must remove them.
    gone = d.deletions("inskrivet_agande") | set(change.agande["object_id"])
    kept = base.agande[~base.agande["object_id"].isin(gone)]
    after = pd.concat([kept, change.agande])
    still = set(after["owner_key"].dropna())
    orphans = set(base.persons["owner_key"]) - still
    assert orphans, "the change should leave persons without ownership"
    assert d.deletions("inskrivet_agande") and d.deletions("inskrivningsfastighet") == d.deletions(
        "inteckning"
    )


def test_sets_and_product_checked(inskrivning_deliveries, bestammelse_deliveries):
    with pytest.raises(InputError, match="not inskrivning"):
        read_inskrivning(bestammelse_deliveries[0])
    with pytest.raises(InputError, match="not markreglerande"):
        read_bestammelser(inskrivning_deliveries[0])
    one = read_inskrivning(inskrivning_deliveries[0], sets=["inteckning"])
    assert set(one.frames) == {"inteckning"}


def test_delivery_read_per_set(inskrivning_deliveries):
    with open_delivery(inskrivning_deliveries[0]) as d:
        t = d.read("inskrivet_agande")
        assert set(t) == {"agande", "forvarv", "fang", "overlatelse", "subsets"}
        # every exchange object the set's file held, for the store's "delete, then add"
        assert set(t["subsets"]["subset"]) == {"inskrivet_agande"}
        assert set(t["subsets"]["object_id"]) >= set(t["agande"]["object_id"])
        t = d.read("folkbokford_person_organisation", personal_data=True)
        assert set(t) == {"persons", "organisations"} and "personnummer" in t["persons"]


def test_owner_key_forms():
    s = b"secret"
    assert owner_key("556677-8899") == "org:556677-8899"  # organisations need no secret
    assert owner_key("5566778899") == "org:556677-8899"
    k = owner_key("19391231-1234", s)
    assert k.startswith("pnr:") and k == owner_key("193912311234", s) == owner_key("391231-1234", s)
    # the century is part of the key: '+' (100 years or older) and 12-digit forms tell it
    assert owner_key("18391231-1234", s) != k and owner_key("391231+1234", s) == owner_key(
        "18391231-1234", s
    )
    assert (
        owner_key("20101231-1234", s)
        == owner_key("101231-1234", s)
        != owner_key("19101231-1234", s)
    )
    assert owner_key("19391231-1234", b"another") != k
    assert owner_key(None, s) is None and owner_key("  ", s) is None
    with pytest.raises(ValueError, match="secret"):
        owner_key("19391231-1234")


# --- v3 spellings (FORMATS.md §6: the Direkt API's v3 names, the older SOAP nesting) -------------

_NS = "http://namespace.lantmateriet.se/distribution/produkter/inskrivning/v3"
_OID, _PID = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
_HEAD = (
    f"<Inskrivningsfastighet><objektidentitet>{_OID}</objektidentitet>"
    f"<versionGiltigFran>2026-01-02T10:00:00+01:00</versionGiltigFran>"
    f"<Fastighetsreferens><objektidentitet>{_PID}</objektidentitet>"
    "<fastighetsbeteckning>UPPSALA KUNGSÄNGEN 1:1</fastighetsbeteckning></Fastighetsreferens>"
)
_V3_AGANDE = f"""<?xml version="1.0" encoding="UTF-8"?>
<InskrivningResponse xmlns="{_NS}"><InskrivningMember>{_HEAD}
<Agande><Lagfart><objektidentitet>aaaaaaaa-0000-4000-8000-000000000001</objektidentitet>
  <inskrivningsdag>2020-05-04</inskrivningsdag><beslut>Beviljad</beslut><dagboksnummer>2020/123</dagboksnummer>
  <beviljadAndel><taljare>1</taljare><namnare>2</namnare></beviljadAndel>
  <Agare><Person><idnummer>19391231-1234</idnummer><fornamn>Anna</fornamn><efternamn>Svensson</efternamn>
    <adress><coAdress>c/o Berg</coAdress><utdelningsadress1>Storgatan 1</utdelningsadress1>
    <utdelningsadress2>lgh 1102</utdelningsadress2><postnummer>75310</postnummer><postort>UPPSALA</postort></adress>
  </Person></Agare></Lagfart></Agande>
<Agande><objektidentitet>aaaaaaaa-0000-4000-8000-000000000002</objektidentitet><typ>Lagfart</typ>
  <beviljadAndel><taljare>1</taljare><namnare>2</namnare></beviljadAndel>
  <Agare><Organisation><idnummer>556677-8899</idnummer><organisationsnamn>Bolaget AB</organisationsnamn>
    <adress><utdelningsadress1>Box 1</utdelningsadress1><postnummer>75311</postnummer><postort>UPPSALA</postort></adress>
  </Organisation></Agare></Agande>
<tidigareAgande><objektidentitet>aaaaaaaa-0000-4000-8000-000000000003</objektidentitet><typ>Lagfart</typ>
  <Agare><UtlandskAgare><fornamn>John</fornamn><efternamn>Smith</efternamn>
    <utlandsadress><utdelningsadress1>1 Main St</utdelningsadress1><utdelningsadress2>Springfield</utdelningsadress2>
    <land>USA</land></utlandsadress></UtlandskAgare></Agare></tidigareAgande>
<fastighetsagandeforandring><objektidentitet>bbbbbbbb-0000-4000-8000-000000000001</objektidentitet>
  <fang><objektidentitet>cccccccc-0000-4000-8000-000000000001</objektidentitet><fangesdag>2020-04-01</fangesdag>
    <fangesart>Köp</fangesart><fangeskod>1</fangeskod><andelFang><taljare>1</taljare><namnare>2</namnare></andelFang>
    <inskrivetAgande><objektidentitet>aaaaaaaa-0000-4000-8000-000000000001</objektidentitet></inskrivetAgande></fang>
  <fang><objektidentitet>cccccccc-0000-4000-8000-000000000002</objektidentitet><fangesdag>2020-04-02</fangesdag>
    <fangesart>Gåva</fangesart><fangeskod>2</fangeskod></fang>
  <kopeskilling><objektidentitet>dddddddd-0000-4000-8000-000000000001</objektidentitet>
    <kopeskillingFastEgendom><valuta>SEK</valuta><summa>2500000</summa></kopeskillingFastEgendom>
    <kopeskillingstyp>Köpeskilling</kopeskillingstyp></kopeskilling>
  <overlatelse><objektidentitet>eeeeeeee-0000-4000-8000-000000000001</objektidentitet>
    <andelOverlatelse><taljare>1</taljare><namnare>1</namnare></andelOverlatelse>
    <inskrivetAgande><objektidentitet>aaaaaaaa-0000-4000-8000-000000000003</objektidentitet></inskrivetAgande></overlatelse>
</fastighetsagandeforandring></Inskrivningsfastighet></InskrivningMember></InskrivningResponse>
"""
_V3_INTECKNING = f"""<?xml version="1.0" encoding="UTF-8"?>
<InskrivningResponse xmlns="{_NS}"><InskrivningMember>{_HEAD}
<belastar><foretradesordning>2</foretradesordning><inskrivenBelastning>
  <objektidentitet>ffffffff-0000-4000-8000-000000000001</objektidentitet><typ>Inteckning</typ>
  <inskrivningsdag>2021-03-04</inskrivningsdag><dagboksnummer>2021/77</dagboksnummer>
  <pantbrevstyp>Datapantbrev</pantbrevstyp><belopp><valuta>SEK</valuta><summa>500000</summa></belopp>
</inskrivenBelastning></belastar></Inskrivningsfastighet></InskrivningMember></InskrivningResponse>
"""


def test_v3_spellings(tmp_path):
    (tmp_path / "inskrivetagande_1.xml").write_text(_V3_AGANDE, encoding="utf-8")
    (tmp_path / "inteckning_1.xml").write_text(_V3_INTECKNING, encoding="utf-8")
    (tmp_path / "inskrivningsfastighet_1.xml").write_text(
        f'<InskrivningResponse xmlns="{_NS}"><InskrivningMember>{_HEAD}</Inskrivningsfastighet>'
        "</InskrivningMember></InskrivningResponse>",
        encoding="utf-8",
    )
    data = read_inskrivning(tmp_path, personal_data=True, owner_secret=b"k" * 32)
    assert not data.unmapped, data.unmapped
    a = data.agande.set_index("ownership_id")
    p = a.loc["aaaaaaaa-0000-4000-8000-000000000001"]
    assert p["ownership_type"] == "Lagfart" and p["current"] and p["share_denominator"] == 2
    assert (p["first_name"], p["last_name"], p["care_of"]) == ("Anna", "Svensson", "c/o Berg")
    assert (p["address"], p["address_line2"], p["postal_code"]) == (
        "Storgatan 1",
        "lgh 1102",
        "75310",
    )
    assert p["owner_key"] == owner_key("19391231-1234", b"k" * 32)
    o = a.loc["aaaaaaaa-0000-4000-8000-000000000002"]
    assert o["owner_key"] == "org:556677-8899" and o["organisation_name"] == "Bolaget AB"
    f = a.loc["aaaaaaaa-0000-4000-8000-000000000003"]
    assert not f["current"] and (f["foreign_address1"], f["foreign_country"]) == (
        "1 Main St",
        "USA",
    )
    assert str(data.inskrivningsfastighet["version_valid_from"].iloc[0]).startswith("2026-01-02")
    fang = data.fang.sort_values("fang_id")
    assert len(fang) == 2 and fang["acquisition_code"].tolist() == ["1", "2"]
    assert set(fang["acquisition_id"]) == {"bbbbbbbb-0000-4000-8000-000000000001"}
    fv = data.forvarv.iloc[0]
    assert fv["price"] == 2_500_000 and fv["price_type"] == "Köpeskilling"
    assert fv["acquisition_kind"] == "Köp"  # its first Fång
    ov = data.overlatelse.iloc[0]
    assert (
        ov["ownership_id"] == "aaaaaaaa-0000-4000-8000-000000000003"
        and ov["share_denominator"] == 1
    )
    m = data.inteckning.iloc[0]
    assert (m["mortgage_id"], m["priority"], m["amount"]) == (
        "ffffffff-0000-4000-8000-000000000001",
        2,
        500_000,
    )
    assert (m["diary_number"], str(m["registered_on"])[:10]) == ("2021/77", "2021-03-04")
    # redacted by default: the person's names and address; the foreign owner's too
    red = read_inskrivning(tmp_path, owner_secret=b"k" * 32).agande
    person = red[red["organisation_name"].isna()]
    for col in (
        "first_name",
        "last_name",
        "care_of",
        "address",
        "address_line2",
        "foreign_address1",
    ):
        assert person[col].isna().all(), col


def _unpacked_with(tmp_path, sample_data, rewrite, set_name="inteckning"):
    """The bundled inskrivning base unpacked into a folder, one set's data file rewritten."""
    import zipfile

    base = sorted((sample_data / "deliveries" / "inskrivning").glob("000_base_*.zip"))[0]
    root = tmp_path / "delivery"
    with zipfile.ZipFile(base) as outer:
        outer.extractall(root)
    folder = next(p for p in root.iterdir() if p.is_dir())
    set_zip = folder / f"{set_name}.zip"
    with zipfile.ZipFile(set_zip) as inner:
        [name] = inner.namelist()
        inner.extractall(folder)
    set_zip.unlink()
    xml = folder / name
    xml.write_text(rewrite(xml.read_text(encoding="utf-8")), encoding="utf-8")
    return root


def test_a_grouping_level_around_each_object_reads_every_object(tmp_path, sample_data):
    root = _unpacked_with(
        tmp_path,
        sample_data,
        lambda t: t.replace(
            "<Inskrivningsfastighet>", "<Inskrivningsinformation><Inskrivningsfastighet>"
        ).replace("</Inskrivningsfastighet>", "</Inskrivningsfastighet></Inskrivningsinformation>"),
    )
    plain = read_inskrivning(
        _unpacked_with(tmp_path / "plain", sample_data, lambda t: t), sets=["inteckning"]
    ).frames["inteckning"]
    wrapped = read_inskrivning(root, sets=["inteckning"]).frames["inteckning"]
    assert len(plain) > 0
    pd.testing.assert_frame_equal(wrapped, plain)


def test_objects_not_recognised_are_refused_naming_the_element(tmp_path, sample_data):
    from vggeo.errors import IntegrityError

    root = _unpacked_with(
        tmp_path, sample_data, lambda t: t.replace("Inskrivningsfastighet>", "Okandfastighet>", 2)
    )  # the first object, renamed
    with pytest.raises(
        IntegrityError,
        match=r"99 objects recognised in inteckning_1\.xml, the "
        r"metadata says 100.*Okandfastighet.*vggeo inspect",
    ):
        read_inskrivning(root, sets=["inteckning"])


DODSBO_PNR = "193903023038"  # a personnummer (third digit < 2): a person's, whatever the name


def _person_as_organisation(text: str, tag: str, name: str) -> str:
    """The first owner of the file under ``tag`` with an organisation name and a personnummer."""
    start = text.index(f"<{tag}>")
    end = text.index(f"</{tag}>", start) + len(f"</{tag}>")
    body = f"<idnummer>{DODSBO_PNR}</idnummer><organisationsnamn>{name}</organisationsnamn>"
    body += "<adress><utdelningsadress>Parkgatan 43</utdelningsadress>"
    body += "<postnummer>82732</postnummer><postort>ÖREBRO</postort></adress>"
    return text[:start] + f"<{tag}>{body}</{tag}>" + text[end:]


@pytest.mark.parametrize("name", ["Dödsbo efter Maria Olsson", " "], ids=["dodsbo", "blank"])
def test_an_organisation_with_a_personnummer_is_keyed_and_redacted_as_a_person(
    tmp_path, sample_data, name
):
    """A dödsbo (or a sole trader) carries a personnummer; an organisation name, even a blank
    one, must not make the number a public key, nor keep the name and address."""
    root = _unpacked_with(
        tmp_path,
        sample_data,
        lambda t: _person_as_organisation(t, "InskrivenPerson", name),
        set_name="inskrivet_agande",
    )
    secret = b"k" * 32
    agande = read_inskrivning(root, sets=["inskrivet_agande"], owner_secret=secret).agande
    digits = DODSBO_PNR[2:8]
    assert not agande["owner_key"].fillna("").str.contains(digits).any()
    row = agande[agande["owner_key"] == owner_key(DODSBO_PNR, secret)]
    assert len(row) >= 1  # with the person's other holdings: one key for one number
    for col in ("organisation_name", "address", "postal_code", "postal_town"):
        assert row[col].fillna("").eq("").all(), col  # none (or the blank name given)
    full = read_inskrivning(
        root, sets=["inskrivet_agande"], owner_secret=secret, personal_data=True
    ).agande
    kept = full[full["owner_key"] == owner_key(DODSBO_PNR, secret)]
    assert "ÖREBRO" in kept["postal_town"].tolist()  # asked for: kept


def test_organisations_with_a_personnummer_and_care_of_are_redacted(tmp_path, sample_data):
    def rewrite(t: str) -> str:
        t = _person_as_organisation(t, "Organisation", "Dödsbo efter Maria Olsson")
        t = t.replace("<organisationsnummer>", "<organisationsnummer>", 1)
        return t.replace(
            "<adress><utdelningsadress>Storgatan 8",
            "<adress><coAdress>c/o Maria Olsson</coAdress><utdelningsadress>Storgatan 8",
            1,
        )

    root = _unpacked_with(
        tmp_path, sample_data, rewrite, set_name="folkbokford_person_organisation"
    )
    secret = b"k" * 32
    orgs = read_inskrivning(
        root, sets=["folkbokford_person_organisation"], owner_secret=secret
    ).organisations
    assert not orgs["owner_key"].str.contains(DODSBO_PNR[2:8]).any()
    dodsbo = orgs[orgs["owner_key"] == owner_key(DODSBO_PNR, secret)]
    assert len(dodsbo) == 1 and dodsbo["organisation_name"].isna().all()
    assert dodsbo["address"].isna().all()
    assert orgs["care_of"].isna().all()  # c/o names a person
    real = orgs[orgs["owner_key"].str.startswith("org:")]
    assert real["organisation_name"].notna().all() and real["address"].notna().any()


def test_an_integer_beyond_64_bits_is_refused_not_wrapped(tmp_path, sample_data):
    from vggeo.errors import SchemaError

    root = _unpacked_with(
        tmp_path,
        sample_data,
        lambda t: re.sub(
            r"<taljare>\d+</taljare>", "<taljare>99999999999999999999</taljare>", t, count=1
        ),
        set_name="inskrivet_agande",
    )
    with pytest.raises(SchemaError, match="out of range") as err:
        read_inskrivning(root, sets=["inskrivet_agande"])
    assert err.value.value == "99999999999999999999"


def test_owner_key_never_writes_a_personnummer_in_clear():
    secret = b"k" * 32
    assert owner_key(DODSBO_PNR, secret, organisation=True) == owner_key(DODSBO_PNR, secret)
    assert owner_key("552128-3092", secret, organisation=True) == "org:552128-3092"


def test_a_number_with_other_scripts_digits_is_no_crash():
    assert owner_key("\u00b3903023038", b"k" * 32).startswith("pnr:")
    assert owner_key("\u0661\u0662", b"k" * 32).startswith("pnr:")


def test_a_leaf_with_text_between_objects_is_reported(tmp_path, sample_data):
    """A childless element with text among the objects holds no record and is no object (the
    counts still agree): its text is data, so it is reported, not passed over."""
    root = _unpacked_with(
        tmp_path,
        sample_data,
        lambda t: t.replace(
            "<InskrivningMember>", "<anmarkning>Uppgift saknas</anmarkning><InskrivningMember>", 1
        ),
    )
    data = read_inskrivning(root, sets=["inteckning"])
    assert data.unmapped["anmarkning"] == 1
    blank = _unpacked_with(
        tmp_path / "blank",
        sample_data,
        lambda t: t.replace("<InskrivningMember>", "<anmarkning/><InskrivningMember>", 1),
    )
    assert "anmarkning" not in read_inskrivning(blank, sets=["inteckning"]).unmapped


def test_an_ownership_with_two_identities_reports_the_wrappers(tmp_path, sample_data):
    """An Agande with its own objektidentitet and another in its Lagfart: the first is the
    ownership_id, the other is reported (it was dropped by the fill without a word)."""

    def rewrite(t: str) -> str:
        start = t.index("<Agande><typ>Lagfart</typ>")
        ids = (
            "<Agande><objektidentitet>aaaaaaaa-0000-4000-8000-000000000001</objektidentitet>"
            "<Lagfart><objektidentitet>bbbbbbbb-0000-4000-8000-000000000002</objektidentitet>"
            "</Lagfart><typ>Lagfart</typ>"
        )
        return t[:start] + ids + t[start + len("<Agande><typ>Lagfart</typ>") :]

    root = _unpacked_with(tmp_path, sample_data, rewrite, set_name="inskrivet_agande")
    data = read_inskrivning(root, sets=["inskrivet_agande"])
    assert "aaaaaaaa-0000-4000-8000-000000000001" in data.agande["ownership_id"].tolist()
    assert data.unmapped["Agande/lagfart/objektidentitet (another value)"] == 1


def test_values_written_as_attributes_read_as_their_elements(tmp_path, sample_data):
    """The real schema is not public: a value may come as an attribute of its element's parent
    (``<belopp valuta="SEK">``, ``<Inskrivningsfastighet objektidentitet="…">``). Each is read as
    the element of its name; the frame is the one the element form gives."""

    def as_attributes(t: str) -> str:
        t = re.sub(r"<belopp><valuta>([^<]*)</valuta>", r'<belopp valuta="\1">', t)
        t = re.sub(
            r"<Inskrivningsfastighet><objektidentitet>([^<]*)</objektidentitet>"
            r"<objektversion>([^<]*)</objektversion>",
            r'<Inskrivningsfastighet objektidentitet="\1" objektversion="\2">',
            t,
        )
        return re.sub(
            r"<summa>([^<]*)</summa></belopp>", r'<summa xml:lang="sv">\1</summa></belopp>', t
        )

    plain = read_inskrivning(
        _unpacked_with(tmp_path / "plain", sample_data, lambda t: t), sets=["inteckning"]
    )
    attributed = read_inskrivning(
        _unpacked_with(tmp_path / "attr", sample_data, as_attributes), sets=["inteckning"]
    )
    assert not attributed.unmapped, attributed.unmapped  # xml:lang is markup, not data
    frame = plain.frames["inteckning"]
    assert len(frame) > 0 and frame["amount_currency"].eq("SEK").all()
    pd.testing.assert_frame_equal(attributed.frames["inteckning"], frame)


def test_attributes_that_hold_data_nobody_maps_are_reported(tmp_path, sample_data):
    """An attribute the mapping does not know, on a field, a record or a grouping level, is data
    the tables would not hold: reported in ``unmapped`` (a store refuses it), never passed over.
    ``gml:id``, ``xsi:nil`` and ``xml:lang`` are markup."""

    def rewrite(t: str) -> str:
        t = t.replace("<summa>", '<summa enhet="tkr">', 1)
        t = t.replace("<Inteckning>", '<Inteckning status="makulerad">', 1)
        t = t.replace(
            "<InskrivningMember><Inskrivningsfastighet>",
            '<InskrivningMember><Inskrivningsinformation kalla="arkiv"><Inskrivningsfastighet>',
            1,
        )
        t = t.replace(
            "</Inskrivningsfastighet></InskrivningMember>",
            "</Inskrivningsfastighet></Inskrivningsinformation></InskrivningMember>",
            1,
        )
        return t.replace(
            "<pantbrevstyp>",
            '<pantbrevstyp xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="false"'
            ' xmlns:x="urn:x" x:kod="7">',
            1,
        )

    data = read_inskrivning(_unpacked_with(tmp_path, sample_data, rewrite), sets=["inteckning"])
    assert dict(data.unmapped) == {
        "Inteckning/inskrivenbelastning/belopp/summa/@enhet": 1,
        "Inteckning/@status": 1,
        "InskrivningMember/Inskrivningsinformation/@kalla": 1,
        "Inteckning/inskrivenbelastning/pantbrevstyp/@kod": 1,
    }, data.unmapped


def test_a_blank_attribute_holds_no_value(tmp_path, sample_data):
    """``objektidentitet=""`` is no identity, as an empty element is none: the element's value
    is read, nothing is reported, and a blank ``kommun`` is not refused as "not four digits"."""

    def rewrite(t: str) -> str:
        t = t.replace("<Inskrivningsfastighet>", '<Inskrivningsfastighet objektidentitet="">')
        t = t.replace("<Fastighetsreferens>", '<Fastighetsreferens kommun=" ">')
        return t.replace("<belopp>", '<belopp valuta="">')

    plain = read_inskrivning(
        _unpacked_with(tmp_path / "plain", sample_data, lambda t: t), sets=["inteckning"]
    )
    blank = read_inskrivning(
        _unpacked_with(tmp_path / "blank", sample_data, rewrite), sets=["inteckning"]
    )
    assert not blank.unmapped, blank.unmapped
    for name, frame in plain.frames.items():
        pd.testing.assert_frame_equal(blank.frames[name], frame)
    assert blank.members == plain.members


def test_attributes_of_the_document_root_are_reported(tmp_path, sample_data):
    """The root only wraps the members: a value written on it (a count, an identity) is data no
    table keeps, so it is reported. Namespace declarations and ``xsi:`` markup are not data."""

    def rewrite(t: str) -> str:
        return t.replace(
            "<InskrivningResponse ",
            '<InskrivningResponse antal="120" objektidentitet="x" uttag=""'
            ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="a b" ',
            1,
        )

    data = read_inskrivning(_unpacked_with(tmp_path, sample_data, rewrite), sets=["inteckning"])
    assert dict(data.unmapped) == {
        "InskrivningResponse/@antal": 1,
        "InskrivningResponse/@objektidentitet": 1,
    }


@pytest.mark.parametrize(
    ("open_", "close", "current"),
    [
        ("<tidigareAganden><Agande>", "</Agande></tidigareAganden>", False),
        ("<tidigareAgandeLista><Agande>", "</Agande></tidigareAgandeLista>", False),
        ("<Aganden><tidigareAgande>", "</tidigareAgande></Aganden>", False),
        ("<Aganden><Agande>", "</Agande></Aganden>", True),
    ],
)
def test_a_container_that_says_former_owner_is_read_as_one(
    tmp_path, sample_data, open_, close, current
):
    """Grouping levels between an object and its records are passed through, but one that
    names what it holds is not ignored: an Agande inside ``tidigareAganden`` is a former owner
    (it was read as a current one)."""
    first = "<Agande><typ>Lagfart</typ><inskrivningsdag>1971-12-14</inskrivningsdag>"
    dagbok = "1971/8574"

    def rewrite(t: str) -> str:
        start = t.index(first)
        end = t.index("</Agande>", start) + len("</Agande>")
        assert dagbok in t[start:end]
        inner = t[start + len("<Agande>") : end - len("</Agande>")]
        return t[:start] + open_ + inner + close + t[end:]

    root = _unpacked_with(tmp_path, sample_data, rewrite, set_name="inskrivet_agande")
    data = read_inskrivning(root, sets=["inskrivet_agande"])
    agande = data.agande
    assert not data.unmapped
    row = agande[agande["diary_number"] == dagbok]
    assert row["current"].tolist() == [current]
    assert agande["current"].sum() == (len(agande) - 1 + current)


def test_containers_that_disagree_with_a_record_are_reported():
    """A container naming another kind than its record, neither more specific (an
    Bildandebeslut inside ``andringsbesluten``): the record's own name is kept and the
    disagreement reported, not settled silently."""
    from lxml import etree

    from vggeo.lm import mapping as M
    from vggeo.lm._records import Extractor

    ns = "urn:x"
    member = etree.fromstring(
        f'<m xmlns="{ns}"><Plan><objektidentitet>a</objektidentitet><andringsbesluten>'
        "<Bildandebeslut><objektversion>1</objektversion></Bildandebeslut>"
        "</andringsbesluten></Plan></m>"
    )
    ex = Extractor(M.BESTAMMELSE.records[M.BESTAMMELSE_SET])
    assert ex.feed_member(member) == 1
    [decision] = ex.dict_rows("decisions")
    assert decision["kind"] == "bildandebeslut"
    assert ex.unmapped == {"andringsbesluten/Bildandebeslut (another value)": 1}


@pytest.mark.parametrize(
    ("set_name", "tables"),
    [
        ("inteckning", ("inteckning",)),
        ("inskrivet_agande", ("agande", "forvarv")),
        ("avtalsrattighet", ("avtalsrattighet",)),
    ],
)
def test_a_set_read_alone_keeps_the_exchange_objects_fields(
    inskrivning_deliveries, tmp_path, unpack, set_name, tables
):
    """Every set wraps its records in the Inskrivningsfastighet with its designation, municipality
    and version: a user who orders only Inteckning must still get them (they went to a table no
    reader returned). The oracle reads the set's XML with lxml, by local name."""
    from lxml import etree

    folder = unpack(inskrivning_deliveries[0], tmp_path / "d")
    want: dict[str, tuple] = {}
    for xml in folder.rglob(f"{set_name}_[0-9]*.xml"):
        for obj in etree.parse(str(xml)).iterfind(".//{*}Inskrivningsfastighet"):
            ident = obj.findtext("{*}objektidentitet").strip().lower()
            ref = obj.find("{*}Fastighetsreferens")
            want[ident] = (
                ref.findtext("{*}fastighetsbeteckning"),
                ref.findtext("{*}kommun"),
                int(obj.findtext("{*}objektversion")),
            )
    assert want
    data = read_inskrivning(folder, sets=[set_name])
    for table in tables:
        frame = data.frames[table]
        assert len(frame), table
        got = {
            (r.object_id, (r.property_designation, r.municipality, r.object_version))
            for r in frame.itertuples()
        }
        assert got == {(i, want[i]) for i in frame["object_id"]}, table
