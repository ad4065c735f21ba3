"""Write pivotkit's synthetic fixture corpus into fixtures/ (``python tools/make_fixtures.py``).

The corpus is data; this script only keeps it consistent: every content embedded in a broadcast
is the getContent fixture's own data, every genre and channel category comes from the categories
list, every credited person with a fixture carries the same name. Facts about real titles and
people (years, directors, cast, birth dates, awards) are true; ids, images, schedules, update
times and every field name beyond the documented five are made up or assumed, and each file's
``meta`` says which. ``fixtures/getContent/7488.json`` (the provider's documented sample) is read,
never written.

It also writes the bundled timeline (``timelines/`` and ``scenarios.json``), derived from the
corpus (see ``build_timeline``).

Usage: ``python tools/make_fixtures.py [TARGET_DIR]`` (default: the checkout's fixtures/).
"""

from __future__ import annotations

import copy
import json
import sys
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
BASE = "/v1/api/v1"
IMG = "https://img.plurimedia.fr"
APP_ID = "appId=cid-v1:573995c4-a10b-48e5-b5b5-78ad0699dd05"  # the documented sample's

MISSING_KEY = (
    "Access denied due to missing subscription key. Make sure to include subscription "
    "key when making requests to an API."
)
INVALID_KEY = (
    "Access denied due to invalid subscription key. Make sure to provide a valid key "
    "for an active subscription."
)

Json = dict[str, Any]

# --------------------------------------------------------------------------------------------
# Categories: 16 formats. Names of formats 1-5 are public [doc]; 6-16, every id and every genre
# name are assumptions.
# --------------------------------------------------------------------------------------------

PUBLIC_FORMATS = (1, 2, 3, 4, 5)

FORMATS: dict[int, tuple[str, str]] = {
    1: ("Film", "Film"),
    2: ("Série", "Series"),
    3: ("Documentaire", "Documentary"),
    4: ("Émission sportive", "Sports Show"),
    5: ("Magazine", "Magazine"),
    6: ("Téléfilm", "TV Movie"),
    7: ("Jeunesse", "Youth"),
    8: ("Divertissement", "Entertainment"),
    9: ("Information", "News"),
    10: ("Jeu", "Game Show"),
    11: ("Musique", "Music"),
    12: ("Spectacle", "Performing Arts"),
    13: ("Téléréalité", "Reality TV"),
    14: ("Court métrage", "Short Film"),
    15: ("Débat", "Talk Show"),
    16: ("Religion", "Religion"),
}

GENRES: dict[int, tuple[str, str]] = {
    101: ("Science-fiction", "Science fiction"),
    102: ("Comédie", "Comedy"),
    103: ("Drame", "Drama"),
    104: ("Policier", "Crime"),
    105: ("Action", "Action"),
    106: ("Péplum", "Historical epic"),
    107: ("Comédie dramatique", "Comedy drama"),
    108: ("Comédie romantique", "Romantic comedy"),
    109: ("Thriller", "Thriller"),
    110: ("Film d'animation", "Animated film"),
    201: ("Espionnage", "Spy"),
    202: ("Série policière", "Crime series"),
    203: ("Série humoristique", "Comedy series"),
    204: ("Série dramatique", "Drama series"),
    301: ("Nature", "Nature"),
    302: ("Histoire", "History"),
    303: ("Société", "Society"),
    304: ("Sciences", "Science"),
    401: ("Football", "Football"),
    402: ("Rugby", "Rugby"),
    403: ("Tennis", "Tennis"),
    404: ("Cyclisme", "Cycling"),
    405: ("Multisports", "Multi-sport"),
    501: ("Magazine d'information", "News magazine"),
    502: ("Magazine culturel", "Arts magazine"),
    503: ("Magazine de société", "Lifestyle magazine"),
    601: ("Téléfilm dramatique", "TV drama"),
    602: ("Téléfilm policier", "TV crime movie"),
    701: ("Dessin animé", "Cartoon"),
    702: ("Série jeunesse", "Kids' series"),
    801: ("Variétés", "Variety"),
    802: ("Humour", "Comedy"),
    901: ("Journal télévisé", "News bulletin"),
    902: ("Météo", "Weather"),
    1001: ("Jeu de culture générale", "Quiz"),
    1002: ("Jeu d'argent", "Money game"),
    1101: ("Concert", "Concert"),
    1102: ("Clips", "Music videos"),
    1201: ("Théâtre", "Theatre"),
    1202: ("Opéra", "Opera"),
    1203: ("Danse", "Dance"),
    1301: ("Aventure", "Adventure"),
    1302: ("Télé-crochet", "Talent show"),
    1401: ("Court métrage d'animation", "Animated short"),
    1402: ("Court métrage de fiction", "Live-action short"),
    1501: ("Débat politique", "Political debate"),
    1502: ("Talk-show", "Talk show"),
    1601: ("Émission religieuse", "Religious programme"),
}


def _lang_index(lang: str) -> int:
    return 0 if lang == "fr" else 1


def genre(gid: int, lang: str) -> Json:
    """A genre as the API nests it under a format or a content."""
    return {
        "id": gid,
        "name": GENRES[gid][_lang_index(lang)],
        "kind": "genre",
        "formatId": gid // 100,
    }


def fmt(fid: int, lang: str, *, with_genres: bool) -> Json:
    """A format, with its genres (categories list) or without (a channel's categories)."""
    out: Json = {"id": fid, "name": FORMATS[fid][_lang_index(lang)], "kind": "format"}
    if with_genres:
        out["genres"] = [genre(g, lang) for g in sorted(GENRES) if g // 100 == fid]
    return out


# --------------------------------------------------------------------------------------------
# Headers, requests, exchanges
# --------------------------------------------------------------------------------------------


def _when(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def provider_headers(stamp: str) -> dict[str, str]:
    """The backend's header set of API.md section 2 (content-length left out: gzip size)."""
    return {
        "cache-control": "no-cache",
        "content-encoding": "gzip",
        "content-type": "application/json; charset=utf-8",
        "date": format_datetime(_when(stamp), usegmt=True),
        "expires": "-1",
        "pragma": "no-cache",
        "request-context": APP_ID,
        "vary": "Accept-Encoding,Origin",
        "x-aspnet-version": "4.0.30319",
        "x-powered-by": "ASP.NET",
    }


def gateway_headers(stamp: str, retry_after: int | None = None) -> dict[str, str]:
    """Headers of an error the gateway writes itself [assumed: APIM defaults]."""
    out = {"content-type": "application/json", "date": format_datetime(_when(stamp), usegmt=True)}
    if retry_after is not None:
        out["retry-after"] = str(retry_after)
    return out


def envelope(data: Any) -> Json:
    """The backend's envelope of a 200."""
    return {"version": "v1", "statusCode": 200, "data": data}


FILES: dict[tuple[str, str], Json] = {}


def exchange(
    op: str,
    name: str,
    path: str,
    body: Any,
    *,
    stamp: str,
    notes: str,
    lang: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    request_headers: dict[str, str] | None = None,
    synthetic: list[str] | None = None,
    assumed: list[str] | None = None,
) -> None:
    """Record one fixture file to write (``fixtures/<op>/<name>.json``)."""
    request: Json = {"method": "GET", "path": BASE + path}
    if lang is not None:
        request["query"] = {"lang": lang}
    request["headers"] = (
        {"Cache-Control": "no-cache"} if request_headers is None else request_headers
    )
    meta: Json = {"operationId": op, "source": "synthetic", "recorded": stamp, "account": "full"}
    if synthetic:
        meta["synthetic"] = synthetic
    if assumed:
        meta["assumed"] = assumed
    meta["notes"] = notes
    key = (op, name)
    if key in FILES:
        raise ValueError(f"duplicate fixture {op}/{name}")
    FILES[key] = {
        "request": request,
        "response": {
            "status": status,
            "headers": provider_headers(stamp) if headers is None else headers,
            "body": body,
        },
        "meta": meta,
    }


# --------------------------------------------------------------------------------------------
# People credited in the contents. Ids 1001-1004 are the documented Blade Runner sample's.
# --------------------------------------------------------------------------------------------

ROLES = {
    "director": ("Réalisateur", "Director"),
    "actor": ("Acteur", "Actor"),
    "actress": ("Actrice", "Actress"),
    "creator": ("Créateur", "Creator"),
    "voice": ("Voix", "Voice"),
    "presenter": ("Présentatrice", "Presenter"),
}

NAMES = {
    1001: "Ridley Scott",
    1002: "Harrison Ford",
    1003: "Rutger Hauer",
    1004: "Sean Young",
    1005: "Russell Crowe",
    1006: "Joaquin Phoenix",
    1007: "Connie Nielsen",
    1008: "Oliver Reed",
    1009: "Audrey Tautou",
    1010: "Mathieu Kassovitz",
    1011: "Jean-Pierre Jeunet",
    1012: "Rufus",
    1013: "Olivier Nakache",
    1014: "Omar Sy",
    1015: "Vincent Cassel",
    1016: "Éric Toledano",
    1017: "François Cluzet",
    1018: "Anne Le Ny",
    1019: "Audrey Fleurot",
    1020: "Hubert Koundé",
    1021: "Saïd Taghmaoui",
    1022: "Luc Jacquet",
    1023: "Romane Bohringer",
    1024: "Charles Berling",
    1025: "Jules Sitruk",
    1026: "Éric Rochant",
    1027: "Jean-Pierre Darroussin",
    1028: "Sara Giraudeau",
    1029: "Léa Drucker",
    1030: "Zineb Triki",
    1031: "Élise Lucet",
}


def credits(lang: str, *rows: tuple[Any, ...]) -> list[Json]:
    """Credits from (personId, role[, character]) rows, in order."""
    out = []
    for order, row in enumerate(rows):
        pid, role = row[0], row[1]
        item: Json = {"personId": pid, "name": NAMES[pid], "role": ROLES[role][_lang_index(lang)]}
        if len(row) > 2:
            item["character"] = row[2]
        item["order"] = order
        out.append(item)
    return out


def image(
    iid: int,
    url: str,
    hierarchy: int | None,
    kind: str,
    width: int = 1280,
    height: int = 720,
    **extra: Any,
) -> Json:
    """An image; ``hierarchy`` 1 broadcast, 2 content, 3 series/season, 4 category."""
    out: Json = {"id": iid, "url": url}
    if hierarchy is not None:
        out["hierarchy"] = hierarchy
    out.update({"width": width, "height": height, "type": kind})
    out.update(extra)
    return out


def poster(cid: int, iid: int) -> Json:
    """A content's poster (hierarchy 2)."""
    return image(iid, f"{IMG}/contents/{cid}/poster.jpg", 2, "poster", 600, 800)


# --------------------------------------------------------------------------------------------
# Contents
# --------------------------------------------------------------------------------------------

CONTENT_SYNTHETIC = ["/data/id", "/data/lastUpdate", "/data/isFre", "/data/images", "/data/credits"]
CONTENT_ASSUMED = ["/data/formatId", "/data/format", "/data/genres"]
CONTENT_NOTE = (
    "Synthetic. True of the {what}: {facts}. Made up: the ids (content, persons, "
    "images), lastUpdate, isFre and the images. Field names beyond id, title, "
    "typographicTitle, lastUpdate and isFre, the format and genre ids and names, and "
    "csaRating are assumptions."
)


def content(
    cid: int,
    lang: str,
    *,
    title: str,
    original: str,
    format_id: int,
    genres: list[int],
    year: int,
    countries: list[str],
    duration: int,
    short: str,
    synopsis: str,
    cast: list[Json],
    images: list[Json],
    last_update: str,
    is_fre: bool,
    csa: int | None = None,
    typographic: str | None = None,
    **series: int,
) -> Json:
    """One content's data, fields in the documented sample's order."""
    data: Json = {
        "id": cid,
        "title": title,
        "typographicTitle": typographic or title,
        "originalTitle": original,
        "formatId": format_id,
        "format": FORMATS[format_id][_lang_index(lang)],
        "genres": [genre(g, lang) for g in genres],
        "productionYear": year,
        "countries": countries,
        "duration": duration,
        "shortSynopsis": short,
        "synopsis": synopsis,
    }
    if csa is not None:
        data["csaRating"] = csa
    data.update(series)
    if cast:
        data["credits"] = cast
    if images:
        data["images"] = images
    data["lastUpdate"] = last_update
    data["isFre"] = is_fre
    return data


CONTENTS: dict[tuple[int, str], Json] = {}


def add_content(
    data: Json,
    lang: str,
    stamp: str,
    facts: str,
    what: str = "film",
    assumed_extra: tuple[str, ...] = (),
) -> None:
    """Keep a content for cross-references and write its getContent fixture."""
    cid = data["id"]
    CONTENTS[cid, lang] = data
    documented = ("id", "lastUpdate", "isFre") if cid == 7488 else ()
    synthetic = [
        p
        for p in CONTENT_SYNTHETIC
        if p.split("/")[2] in data and p.split("/")[2] not in documented
    ]
    synthetic += [f"/data/{k}" for k in ("seriesId", "seasonId") if k in data]
    assumed = list(CONTENT_ASSUMED)
    if "csaRating" in data:
        assumed.append("/data/csaRating")
    assumed += list(assumed_extra)
    note = CONTENT_NOTE.format(what=what, facts=facts)
    if lang == "en":
        note += (
            " English answer (lang=en): texts, role and category names in English; that "
            "the API translates titles is an assumption."
        )
    exchange(
        "getContent",
        f"{cid}" if lang == "fr" else f"{cid}-{lang}",
        f"/contents/{cid}",
        envelope(data),
        stamp=stamp,
        lang=None if lang == "fr" else lang,
        notes=note,
        synthetic=synthetic,
        assumed=assumed,
    )


def build_contents() -> None:
    # Blade Runner in English (the French answer is the documented sample, read from disk).
    doc = json.loads((ROOT / "fixtures" / "getContent" / "7488.json").read_text("utf-8"))
    CONTENTS[7488, "fr"] = doc["response"]["body"]["data"]
    br = copy.deepcopy(CONTENTS[7488, "fr"])
    br["format"] = FORMATS[1][1]
    br["genres"] = [genre(101, "en")]
    br["shortSynopsis"] = (
        "In Los Angeles, 2019, a blade runner hunts down four replicants who "
        "have come back to Earth."
    )
    br["synopsis"] = (
        "In Los Angeles in 2019, Rick Deckard, a former blade runner, is called "
        "back to hunt down four replicants, last-generation androids who have "
        "returned illegally to Earth to meet their maker."
    )
    br["credits"] = credits(
        "en",
        (1001, "director"),
        (1002, "actor", "Rick Deckard"),
        (1003, "actor", "Roy Batty"),
        (1004, "actress", "Rachael"),
    )
    add_content(
        br,
        "en",
        "2024-11-07T08:02:14Z",
        "1982 film by Ridley Scott with Harrison Ford, Rutger Hauer and Sean Young; "
        "same id, titles, lastUpdate and isFre as the documented French sample",
    )

    # Gladiator (2000).
    for lang in ("fr", "en"):
        fr = lang == "fr"
        data = content(
            7520,
            lang,
            title="Gladiator",
            original="Gladiator",
            format_id=1,
            genres=[106, 105],
            year=2000,
            countries=["US", "GB"],
            duration=155,
            short=(
                "Trahi par Commode, le général romain Maximus devient gladiateur et "
                "cherche à se venger."
                if fr
                else "Betrayed by Commodus, the Roman general Maximus becomes a gladiator and "
                "seeks revenge."
            ),
            synopsis=(
                "En 180, à la mort de l'empereur Marc Aurèle, son fils Commode s'empare "
                "du trône et fait exécuter la famille du général Maximus. Réduit en "
                "esclavage, Maximus devient gladiateur et gagne l'arène de Rome."
                if fr
                else "In 180 AD, when the emperor Marcus Aurelius dies, his son Commodus seizes "
                "the throne and has the family of general Maximus put to death. Sold into "
                "slavery, Maximus becomes a gladiator and fights his way to the arena of "
                "Rome."
            ),
            csa=-12,
            cast=credits(
                lang,
                (1001, "director"),
                (1005, "actor", "Maximus"),
                (1006, "actor", "Commode" if fr else "Commodus"),
                (1007, "actress", "Lucilla"),
                (1008, "actor", "Proximo"),
            ),
            images=[poster(7520, 70002)],
            last_update="2024-10-14T16:20:07.4128",
            is_fre=True,
        )
        add_content(
            data,
            lang,
            "2024-11-07T08:05:41Z" if fr else "2024-11-07T08:06:02Z",
            "2000 film by Ridley Scott, American and British, 155 minutes, with Russell "
            "Crowe (Maximus), Joaquin Phoenix (Commodus), Connie Nielsen (Lucilla) and "
            "Oliver Reed (Proximo); the story",
        )

    # Le Fabuleux Destin d'Amélie Poulain (2001).
    for lang in ("fr", "en"):
        fr = lang == "fr"
        data = content(
            7610,
            lang,
            title="Le Fabuleux Destin d'Amélie Poulain" if fr else "Amélie",
            original="Le Fabuleux Destin d'Amélie Poulain",
            format_id=1,
            genres=[108],
            year=2001,
            countries=["FR", "DE"],
            duration=122,
            short=(
                "À Montmartre, une jeune serveuse décide de changer la vie de ceux qui l'entourent."
                if fr
                else "In Montmartre, a young waitress decides to change the lives of the people "
                "around her."
            ),
            synopsis=(
                "Amélie Poulain, serveuse au café des Deux Moulins à Montmartre, découvre "
                "une boîte à trésors d'enfant cachée dans son appartement. Elle décide "
                "alors de faire en secret le bonheur des autres, et rencontre Nino "
                "Quincampoix, un collectionneur de photos de Photomaton."
                if fr
                else "Amélie Poulain, a waitress at the Café des Deux Moulins in Montmartre, "
                "finds a box of childhood treasures hidden in her flat. She resolves to "
                "bring happiness to others in secret, and meets Nino Quincampoix, a "
                "collector of photo-booth pictures."
            ),
            cast=credits(
                lang,
                (1011, "director"),
                (1009, "actress", "Amélie Poulain"),
                (1010, "actor", "Nino Quincampoix"),
                (1012, "actor", "Raphaël Poulain"),
            ),
            images=[poster(7610, 70003)],
            last_update="2024-08-30T11:47:52.9",
            is_fre=True,
        )
        add_content(
            data,
            lang,
            "2024-11-07T08:11:19Z" if fr else "2024-11-07T08:11:48Z",
            "2001 film by Jean-Pierre Jeunet, French and German, 122 minutes, with Audrey "
            "Tautou (Amélie Poulain), Mathieu Kassovitz (Nino Quincampoix) and Rufus "
            "(Raphaël Poulain); the story; the English title 'Amélie'",
            assumed_extra=() if fr else ("/data/title", "/data/typographicTitle"),
        )

    # Intouchables (2011).
    for lang in ("fr", "en"):
        fr = lang == "fr"
        data = content(
            8342,
            lang,
            title="Intouchables" if fr else "The Intouchables",
            original="Intouchables",
            format_id=1,
            genres=[107],
            year=2011,
            countries=["FR"],
            duration=112,
            short=(
                "Un riche aristocrate tétraplégique engage un jeune de banlieue comme aide à "
                "domicile."
                if fr
                else "A wealthy quadriplegic aristocrat hires a young man from the suburbs as his "
                "live-in carer."
            ),
            synopsis=(
                "Devenu tétraplégique après un accident de parapente, Philippe, riche "
                "aristocrate, engage comme aide à domicile Driss, un jeune homme de "
                "banlieue tout juste sorti de prison. Entre eux naît une amitié que rien "
                "ne laissait prévoir."
                if fr
                else "Left quadriplegic by a paragliding accident, Philippe, a wealthy "
                "aristocrat, hires Driss, a young man from the suburbs just out of prison, "
                "as his carer. An unlikely friendship grows between them."
            ),
            cast=credits(
                lang,
                (1013, "director"),
                (1016, "director"),
                (1017, "actor", "Philippe"),
                (1014, "actor", "Driss"),
                (1018, "actress", "Yvonne"),
                (1019, "actress", "Magalie"),
            ),
            images=[poster(8342, 70004)],
            last_update="2024-10-02T14:03:11",
            is_fre=True,
        )
        add_content(
            data,
            lang,
            "2024-11-07T08:14:33Z" if fr else "2024-11-07T08:14:59Z",
            "2011 film by Olivier Nakache and Éric Toledano, French, 112 minutes, with "
            "François Cluzet (Philippe), Omar Sy (Driss), Anne Le Ny (Yvonne) and Audrey "
            "Fleurot (Magalie); the story; the English title 'The Intouchables'",
            assumed_extra=() if fr else ("/data/title", "/data/typographicTitle"),
        )

    # La Haine (1995).
    data = content(
        7555,
        "fr",
        title="La Haine",
        original="La Haine",
        format_id=1,
        genres=[103],
        year=1995,
        countries=["FR"],
        duration=98,
        short="Vingt-quatre heures dans la vie de trois amis d'une cité de banlieue après une "
        "nuit d'émeutes.",
        synopsis="Au lendemain d'une nuit d'émeutes dans une cité de la banlieue parisienne, "
        "trois amis, Vinz, Hubert et Saïd, errent vingt-quatre heures entre la cité et "
        "Paris. Vinz a trouvé le revolver qu'un policier a perdu pendant les émeutes.",
        csa=-12,
        cast=credits(
            "fr",
            (1010, "director"),
            (1015, "actor", "Vinz"),
            (1020, "actor", "Hubert"),
            (1021, "actor", "Saïd"),
        ),
        images=[poster(7555, 70005)],
        last_update="2024-06-18T09:31:26.25",
        is_fre=True,
    )
    add_content(
        data,
        "fr",
        "2024-11-07T08:16:12Z",
        "1995 film written and directed by Mathieu Kassovitz, French, black and white, "
        "98 minutes, with Vincent Cassel (Vinz), Hubert Koundé (Hubert) and Saïd "
        "Taghmaoui (Saïd); the story",
    )

    # La Marche de l'empereur (2005), a documentary.
    data = content(
        8120,
        "fr",
        title="La Marche de l'empereur",
        original="La Marche de l'empereur",
        format_id=3,
        genres=[301],
        year=2005,
        countries=["FR"],
        duration=85,
        short="En Antarctique, le long voyage des manchots empereurs vers leur lieu de "
        "reproduction.",
        synopsis="Chaque année, à l'approche de l'hiver austral, les manchots empereurs quittent "
        "l'océan et marchent des jours durant sur la banquise jusqu'à leur lieu de "
        "reproduction, où ils affrontent le froid pour donner naissance à leurs petits.",
        cast=credits("fr", (1022, "director"), (1023, "voice"), (1024, "voice"), (1025, "voice")),
        images=[poster(8120, 70006)],
        last_update="2024-09-03T22:10:45.81234",
        is_fre=True,
    )
    add_content(
        data,
        "fr",
        "2024-11-07T08:18:40Z",
        "2005 documentary by Luc Jacquet, French, 85 minutes, the French voices Romane "
        "Bohringer, Charles Berling and Jules Sitruk; the subject",
        what="documentary",
    )

    # Téléfoot, the sports show of Sunday 3 November 2024 on TF1.
    data = content(
        61234,
        "fr",
        title="Téléfoot",
        original="Téléfoot",
        format_id=4,
        genres=[401],
        year=2024,
        countries=["FR"],
        duration=70,
        short="Le magazine du football de TF1.",
        synopsis="Le rendez-vous du dimanche matin des amateurs de football, créé sur TF1 en "
        "1977 : résumés, reportages et invités.",
        cast=[],
        images=[],
        last_update="2024-11-02T17:25:03.123457",
        is_fre=False,
    )
    add_content(
        data,
        "fr",
        "2024-11-07T08:20:05Z",
        "TF1's Sunday football programme, created in 1977",
        what="sports show",
    )

    # Envoyé spécial, the magazine of Thursday 7 November 2024 on France 2.
    data = content(
        61310,
        "fr",
        title="Envoyé spécial",
        original="Envoyé spécial",
        format_id=5,
        genres=[501],
        year=2024,
        countries=["FR"],
        duration=115,
        short="Le magazine de reportages et d'enquêtes de France 2.",
        synopsis="Reportages, enquêtes et grands témoins : le magazine d'information du jeudi "
        "soir de France 2, créé en 1990 et présenté par Élise Lucet depuis 2016.",
        cast=credits("fr", (1031, "presenter")),
        images=[poster(61310, 70007)],
        last_update="2024-11-06T18:44:51.7",
        is_fre=False,
    )
    add_content(
        data,
        "fr",
        "2024-11-07T08:21:37Z",
        "France 2's Thursday-night news magazine, created in 1990 and presented by "
        "Élise Lucet since 2016",
        what="magazine",
    )

    # Le Bureau des légendes: series master, season 1, its first two episodes.
    bdl_cast = (
        (1010, "actor", "Guillaume Debailly"),
        (1027, "actor", "Henri Duflot"),
        (1028, "actress", "Marina Loiseau"),
        (1029, "actress", "Laurence Balmes"),
    )
    for lang in ("fr", "en"):
        fr = lang == "fr"
        data = content(
            50300,
            lang,
            title="Le Bureau des légendes" if fr else "The Bureau",
            original="Le Bureau des légendes",
            format_id=2,
            genres=[201],
            year=2015,
            countries=["FR"],
            duration=52,
            short=(
                "Les agents clandestins de la DGSE vivent sous une fausse identité, une "
                "« légende »."
                if fr
                else "The DGSE's undercover agents live under a false identity, a 'legend'."
            ),
            synopsis=(
                "Au sein de la DGSE, le service de renseignement extérieur français, le "
                "Bureau des légendes forme et dirige les agents clandestins envoyés à "
                "l'étranger sous une fausse identité. De retour de six ans de mission à "
                "Damas, Guillaume Debailly, alias Malotru, peine à quitter sa légende."
                if fr
                else "Inside the DGSE, France's foreign intelligence service, the Bureau of "
                "Legends trains and runs the undercover agents sent abroad under false "
                "identities. Back from six years in Damascus, Guillaume Debailly, "
                "code-named Malotru, struggles to let go of his legend."
            ),
            cast=credits(lang, (1026, "creator"), *bdl_cast),
            images=[poster(50300, 70008)],
            last_update="2024-07-22T10:00:00.5",
            is_fre=True,
            episodeCount=50,
        )
        add_content(
            data,
            lang,
            "2024-11-07T08:24:10Z" if fr else "2024-11-07T08:24:31Z",
            "French series created by Éric Rochant, first aired on Canal+ in April 2015, "
            "5 seasons of 10 episodes, with Mathieu Kassovitz (Guillaume Debailly), "
            "Jean-Pierre Darroussin (Henri Duflot), Sara Giraudeau (Marina Loiseau) and "
            "Léa Drucker (Laurence Balmes); the premise; the English title 'The Bureau'",
            what="series",
            assumed_extra=("/data/episodeCount", "/data/duration")
            + (() if fr else ("/data/title", "/data/typographicTitle")),
        )

    data = content(
        50310,
        "fr",
        title="Le Bureau des légendes",
        original="Le Bureau des légendes",
        format_id=2,
        genres=[201],
        year=2015,
        countries=["FR"],
        duration=52,
        short="Saison 1 : Malotru rentre de Damas, un agent disparaît en Algérie.",
        synopsis="Saison 1. Rentré de six ans de mission clandestine à Damas, Guillaume Debailly, "
        "alias Malotru, reprend sa place au Bureau des légendes, tandis que la "
        "disparition d'un agent en Algérie met le service en alerte.",
        cast=credits("fr", (1026, "creator"), *bdl_cast, (1030, "actress", "Nadia El Mansour")),
        images=[image(70009, f"{IMG}/series/50300/season-1.jpg", 3, "landscape")],
        last_update="2024-07-22T10:00:01.37",
        is_fre=True,
        seriesId=50300,
        seasonNumber=1,
        episodeCount=10,
    )
    add_content(
        data,
        "fr",
        "2024-11-07T08:25:02Z",
        "first season (2015, 10 episodes) of the series created by Éric Rochant, with "
        "Mathieu Kassovitz, Jean-Pierre Darroussin, Sara Giraudeau, Léa Drucker and "
        "Zineb Triki (Nadia El Mansour); the premise",
        what="season",
        assumed_extra=("/data/seasonNumber", "/data/episodeCount", "/data/duration"),
    )

    episodes = {
        50311: (
            1,
            "Malotru rentre à Paris après six ans de mission clandestine à Damas.",
            "De retour de Damas après six ans passés sous une fausse identité, Guillaume "
            "Debailly, alias Malotru, doit réapprendre à vivre sous son vrai nom. Au "
            "Bureau, la disparition d'un agent en Algérie inquiète Henri Duflot.",
            "2024-11-06T10:05:33.9",
        ),
        50312: (
            2,
            "Malotru reprend ses fonctions au Bureau des légendes.",
            "La suite de la première saison : Malotru reprend ses fonctions au Bureau des "
            "légendes, sous l'autorité d'Henri Duflot.",
            "2024-07-22T10:00:02",
        ),
    }
    for cid, (number, short, synopsis, last_update) in episodes.items():
        data = content(
            cid,
            "fr",
            title="Le Bureau des légendes",
            original="Le Bureau des légendes",
            format_id=2,
            genres=[201],
            year=2015,
            countries=["FR"],
            duration=52,
            short=short,
            synopsis=synopsis,
            cast=credits("fr", *bdl_cast),
            images=[],
            last_update=last_update,
            is_fre=True,
            seriesId=50300,
            seasonId=50310,
            seasonNumber=1,
            episodeNumber=number,
        )
        add_content(
            data,
            "fr",
            "2024-11-07T08:26:18Z" if number == 1 else "2024-11-07T08:26:44Z",
            f"episode {number} of the first season (2015) of the series created by Éric "
            "Rochant, with Mathieu Kassovitz, Jean-Pierre Darroussin, Sara Giraudeau and "
            "Léa Drucker; the summary, kept vague on purpose",
            what="episode",
            assumed_extra=("/data/seasonNumber", "/data/episodeNumber", "/data/duration"),
        )


# --------------------------------------------------------------------------------------------
# Categories, channels, provider numbers, days
# --------------------------------------------------------------------------------------------

CHANNELS: dict[int, tuple[str, str, list[int], int]] = {
    # id: name, shortName, category (format) ids, TNT number
    192: ("TF1", "TF1", [1, 2, 4, 8, 9, 10], 1),
    4: ("France 2", "F2", [2, 5, 8, 9], 2),
    80: ("France 3", "F3", [2, 3, 5, 6, 9], 3),
    34: ("Canal+", "C+", [1, 2, 3, 4], 4),
    47: ("France 5", "F5", [3, 5, 15], 5),
    118: ("M6", "M6", [1, 2, 5, 8, 13], 6),
    111: ("Arte", "Arte", [1, 3, 5, 12], 7),
}
CHANNEL_UPDATES = {
    192: "2024-10-31T04:00:12.5",
    4: "2024-10-31T04:00:12.53",
    80: "2024-10-31T04:00:12.534",
    34: "2024-09-12T15:38:07",
    47: "2024-10-31T04:00:13.1",
    118: "2024-10-31T04:00:13.19",
    111: "2024-06-04T08:12:40.0066",
}
PROVIDERS = ((1, "TNT"), (2, "Orange"), (3, "Free"), (4, "Bouygues Telecom"))
DAYS = [f"202411{d:02d}" for d in range(3, 17)]


def build_reference_lists() -> None:
    assumed_fmt = [
        f"/data/{i}" for i, fid in enumerate(sorted(FORMATS)) if fid not in PUBLIC_FORMATS
    ]
    public_assumed = [
        f"/data/{i}/{k}"
        for i, fid in enumerate(sorted(FORMATS))
        if fid in PUBLIC_FORMATS
        for k in ("id", "genres")
    ]
    for lang, stamp in (("fr", "2024-11-07T07:58:03Z"), ("en", "2024-11-07T07:58:21Z")):
        body = envelope([fmt(f, lang, with_genres=True) for f in sorted(FORMATS)])
        exchange(
            "listCategories",
            lang,
            "/categories",
            body,
            stamp=stamp,
            lang=None if lang == "fr" else lang,
            synthetic=["/data"],
            assumed=[*public_assumed, *assumed_fmt]
            if lang == "en"
            else [*public_assumed, *(f"/data/{i}/name" for i in range(5)), *assumed_fmt],
            notes=(
                "Synthetic. 16 formats [doc]; only five names are public (Film, Series, "
                "Documentary, Sports Show, Magazine: /data/0 to /data/4). The other eleven "
                f"formats ({', '.join(assumed_fmt)}) are ASSUMPTIONS, as are every id, every "
                "genre name and the field names (kind, formatId, genres). Replace this file "
                "with a recording as soon as one exists."
            )
            + (
                " The French names of the five public formats are translations [assumed]."
                if lang == "fr"
                else " English answer (lang=en), same ids as the French."
            ),
        )

    for lang, stamp in (("fr", "2024-11-07T07:57:10Z"), ("en", "2024-11-07T07:57:26Z")):
        channels = []
        for cid, (name, short, cats, _) in CHANNELS.items():
            channels.append(
                {
                    "id": cid,
                    "name": name,
                    "shortName": short,
                    "logo": f"{IMG}/channels/{cid}/logo.png",
                    "categoryIds": cats,
                    "lastUpdate": CHANNEL_UPDATES[cid],
                }
            )
        exchange(
            "listChannels",
            lang,
            "/channels",
            envelope(channels),
            stamp=stamp,
            lang=None if lang == "fr" else lang,
            synthetic=[
                f"/data/{i}/{k}"
                for i in range(len(channels))
                for k in ("id", "logo", "categoryIds", "lastUpdate")
            ],
            assumed=["/data"],
            notes="Synthetic. Real French channels; their ids, logos, lastUpdate and "
            "categories (taken from the categories list) are made up; field names "
            "are assumed."
            + (
                ""
                if lang == "fr"
                else " English answer (lang=en): channel names are proper names and do not change."
            ),
        )

    for cid, lang, stamp in (
        (192, "fr", "2024-11-07T07:59:02Z"),
        (4, "fr", "2024-11-07T07:59:09Z"),
        (34, "fr", "2024-11-07T07:59:15Z"),
        (111, "fr", "2024-11-07T07:59:22Z"),
        (192, "en", "2024-11-07T07:59:30Z"),
    ):
        cats = [fmt(f, lang, with_genres=False) for f in CHANNELS[cid][2]]
        exchange(
            "getChannelCategories",
            f"{cid}" if lang == "fr" else f"{cid}-{lang}",
            f"/channels/{cid}/categories",
            envelope(cats),
            stamp=stamp,
            lang=None if lang == "fr" else lang,
            synthetic=["/data"],
            assumed=["/data"],
            notes=f"Synthetic. The categories of {CHANNELS[cid][0]}: formats of the "
            "categories list, flat (no nested genres), the same ids as the "
            "channel's categoryIds in listChannels. Which categories a channel "
            "belongs to, and the shape, are assumptions.",
        )
    exchange(
        "getChannelCategories",
        "empty-9999",
        "/channels/9999/categories",
        envelope([]),
        stamp="2024-11-07T07:59:41Z",
        assumed=[""],
        notes="Empty result for a channel id with no data: the envelope with data [] "
        "(one of the accepted shapes of the empty 200 [doc]; the exact body is "
        "assumed).",
    )

    numbers = []
    for pid, pname in PROVIDERS:
        for cid, (_, _, _, tnt) in sorted(CHANNELS.items(), key=lambda c: c[1][3]):
            numbers.append(
                {"channelId": cid, "providerId": pid, "providerName": pname, "channelNumber": tnt}
            )
    exchange(
        "listProviderChannels",
        "all",
        "/channels/providers",
        envelope(numbers),
        stamp="2024-11-07T07:57:48Z",
        synthetic=["/data"],
        assumed=["/data"],
        notes="Synthetic. The channel numbers are the real TNT numbers (TF1 1, France 2 2, "
        "France 3 3, Canal+ 4, France 5 5, M6 6, Arte 7), which the French ISP boxes "
        "(Orange, Free, Bouygues Telecom) keep for channels 1 to 27. Provider ids, "
        "channel ids and field names are made up or assumed.",
    )

    days = [{"day": d, "channelIds": list(CHANNELS)} for d in DAYS]
    exchange(
        "listDays",
        "all",
        "/days",
        envelope(days),
        stamp="2024-11-03T05:12:30Z",
        synthetic=["/data"],
        assumed=["/data"],
        notes="Synthetic. Two weeks of days, 3 to 16 November 2024, for every channel of "
        "listChannels; the day format yyyyMMdd and the field names are assumed.",
    )


# --------------------------------------------------------------------------------------------
# Broadcasts, collections, updates
# --------------------------------------------------------------------------------------------


def cat_image(iid: int, gid: int) -> Json:
    """The generic image of a category (hierarchy 4)."""
    return image(iid, f"{IMG}/categories/{gid}.jpg", 4, "landscape")


def bc_image(iid: int, bid: int) -> Json:
    """An image attached to the broadcast itself (hierarchy 1)."""
    return image(iid, f"{IMG}/broadcasts/{bid}.jpg", 1, "landscape")


def season_image() -> Json:
    """The season's image (hierarchy 3), the same object as in the season content."""
    return copy.deepcopy(CONTENTS[50310, "fr"]["images"][0])


def broadcast(
    bid: int,
    channel: int,
    cid: int,
    start: str,
    end: str,
    duration: int,
    images: list[Json],
    last_update: str,
    lang: str = "fr",
    **flags: bool,
) -> Json:
    """A broadcast with the full content it airs (the getContent fixture's data)."""
    out: Json = {
        "id": bid,
        "channelId": channel,
        "contentId": cid,
        "start": start,
        "end": end,
        "duration": duration,
    }
    out.update(flags)
    if images:
        out["images"] = images
    out["content"] = copy.deepcopy(CONTENTS[cid, lang])
    out["lastUpdate"] = last_update
    return out


BROADCAST_NOTE = (
    "Synthetic schedule (the titles did not necessarily air then). Each "
    "broadcast's content is the getContent fixture of its contentId. Images: "
    "{images}. The client keeps the lowest hierarchy [doc]; the rest of the shape "
    "is assumed."
)


def build_schedules() -> None:
    def poster_of(cid: int) -> Json:
        return copy.deepcopy(CONTENTS[cid, "fr"]["images"][0])

    # TF1, Sunday 3 November 2024.
    items = [
        broadcast(
            900101,
            192,
            61234,
            "2024-11-03T10:50:00",
            "2024-11-03T12:00:00",
            70,
            [cat_image(80401, 401)],
            "2024-10-28T12:30:45.12",
            isLive=True,
            isRerun=False,
        ),
        broadcast(
            900102,
            192,
            7520,
            "2024-11-03T21:10:00",
            "2024-11-03T23:45:00",
            155,
            [poster_of(7520), bc_image(80001, 900102), cat_image(80106, 106)],
            "2024-10-28T12:30:45.1",
            isLive=False,
            isRerun=True,
        ),
    ]
    exchange(
        "listBroadcasts",
        "192-20241103",
        "/broadcasts/192/20241103/20241103",
        envelope(items),
        stamp="2024-11-03T05:14:09Z",
        synthetic=["/data"],
        assumed=["/data/0/isLive", "/data/1/isRerun"],
        notes=BROADCAST_NOTE.format(
            images="Téléfoot has only the category's generic image "
            "(hierarchy 4); Gladiator has 2, 1, 4, unsorted, so "
            "the one to keep (1) is not the first"
        ),
    )

    # Canal+, Tuesday 5 November 2024: two episodes of Le Bureau des légendes, then La Haine.
    items = [
        broadcast(
            900201,
            34,
            50311,
            "2024-11-05T21:10:00",
            "2024-11-05T22:05:00",
            55,
            [season_image(), bc_image(80005, 900201), cat_image(80201, 201)],
            "2024-10-29T09:41:18.7",
            isRerun=True,
        ),
        broadcast(
            900202,
            34,
            50312,
            "2024-11-05T22:05:00",
            "2024-11-05T23:00:00",
            55,
            [cat_image(80201, 201), season_image()],
            "2024-10-29T09:41:18.7",
            isRerun=True,
        ),
        broadcast(
            900203,
            34,
            7555,
            "2024-11-05T23:00:00",
            "2024-11-06T00:40:00",
            100,
            [cat_image(80103, 103), poster_of(7555)],
            "2024-11-05T08:41:17.53",
            isRerun=True,
        ),
    ]
    exchange(
        "listBroadcasts",
        "34-20241105",
        "/broadcasts/34/20241105/20241105",
        envelope(items),
        stamp="2024-11-06T09:30:00Z",
        synthetic=["/data"],
        assumed=["/data/0/isRerun"],
        notes=BROADCAST_NOTE.format(
            images="this day covers hierarchies 1 to 4: the "
            "first episode has the season's image (3), its own "
            "(1) and the category's (4); the second the "
            "category's (4) and the season's (3); La Haine the "
            "category's (4) and its poster (2). The last "
            "broadcast ends after midnight, on the next day"
        ),
    )

    # France 5, Wednesday 6 November 2024: a broadcast without images.
    items = [
        broadcast(
            900401,
            47,
            8120,
            "2024-11-06T20:55:00",
            "2024-11-06T22:20:00",
            85,
            [],
            "2024-10-30T17:02:36.4",
        )
    ]
    exchange(
        "listBroadcasts",
        "47-20241106",
        "/broadcasts/47/20241106/20241106",
        envelope(items),
        stamp="2024-11-06T05:20:44Z",
        synthetic=["/data"],
        notes=BROADCAST_NOTE.format(
            images="none at all on this broadcast (the field is "
            "absent), which a client must survive"
        ),
    )

    # France 2, Thursday 7 November 2024.
    items = [
        broadcast(
            900301,
            4,
            61310,
            "2024-11-07T21:10:00",
            "2024-11-07T23:05:00",
            115,
            [bc_image(80002, 900301), cat_image(80501, 501), poster_of(61310)],
            "2024-11-05T06:15:42.8765",
            isLive=False,
        )
    ]
    exchange(
        "listBroadcasts",
        "4-20241107",
        "/broadcasts/4/20241107/20241107",
        envelope(items),
        stamp="2024-11-07T05:08:57Z",
        synthetic=["/data"],
        notes=BROADCAST_NOTE.format(images="hierarchies 1, 4 and 2"),
    )

    # France 3, Saturday 9 November 2024.
    items = [
        broadcast(
            900501,
            80,
            7610,
            "2024-11-09T21:10:00",
            "2024-11-09T23:15:00",
            122,
            [poster_of(7610), cat_image(80108, 108)],
            "2024-11-01T07:45:09.2361",
        )
    ]
    exchange(
        "listBroadcasts",
        "80-20241109",
        "/broadcasts/80/20241109/20241109",
        envelope(items),
        stamp="2024-11-07T05:09:31Z",
        synthetic=["/data"],
        notes=BROADCAST_NOTE.format(images="hierarchies 2 and 4"),
    )

    # M6 and Arte over two days each, to exercise a period longer than one day.
    items = [
        broadcast(
            900601,
            118,
            8342,
            "2024-11-08T21:10:00",
            "2024-11-08T23:10:00",
            112,
            [bc_image(80003, 900601), poster_of(8342)],
            "2024-11-01T07:45:09.23",
        )
    ]
    exchange(
        "listBroadcasts",
        "118-20241108-20241109",
        "/broadcasts/118/20241108/20241109",
        envelope(items),
        stamp="2024-11-07T05:10:02Z",
        synthetic=["/data"],
        notes=BROADCAST_NOTE.format(images="hierarchies 1 and 2")
        + " A two-day period: only the broadcasts of the contents in the corpus are kept.",
    )
    items = [
        broadcast(
            900701,
            111,
            7488,
            "2024-11-10T20:55:00",
            "2024-11-10T22:50:00",
            115,
            [poster_of(7488), bc_image(80004, 900701), cat_image(80101, 101)],
            "2024-11-06T03:12:55.0271",
        )
    ]
    exchange(
        "listBroadcasts",
        "111-20241110",
        "/broadcasts/111/20241110/20241110",
        envelope(items),
        stamp="2024-11-07T05:10:36Z",
        synthetic=["/data"],
        notes=BROADCAST_NOTE.format(
            images="hierarchies 2, 1 and 4; the content is the documented Blade Runner sample"
        ),
    )

    exchange(
        "listBroadcasts",
        "empty-192-20200101",
        "/broadcasts/192/20200101/20200101",
        {},
        stamp="2024-11-07T05:11:10Z",
        assumed=[""],
        notes="Empty result: a day long gone, no broadcasts. Bare {} (the mock's default "
        "empty 200; the exact body is assumed).",
    )

    # Collections: the Bureau's episodes on Canal+ that week.
    links = [
        {
            "contentId": 50311,
            "collectionId": 7001,
            "masterContentId": 50300,
            "seasonContentId": 50310,
        },
        {
            "contentId": 50312,
            "collectionId": 7001,
            "masterContentId": 50300,
            "seasonContentId": 50310,
        },
    ]
    exchange(
        "listCollections",
        "34-20241104-20241110",
        "/collections/34/20241104/20241110",
        envelope(links),
        stamp="2024-11-06T09:31:12Z",
        synthetic=["/data"],
        assumed=["/data"],
        notes="Synthetic. The episodes of Le Bureau des légendes aired on Canal+ that week "
        "(see listBroadcasts/34-20241105) with the series master (50300) and season "
        "(50310) contents; the collection id and field names are assumed.",
    )
    exchange(
        "listCollections",
        "empty-192-20241103",
        "/collections/192/20241103/20241103",
        envelope(None),
        stamp="2024-11-06T09:31:40Z",
        assumed=[""],
        notes="Empty result: TF1 aired no collection that day (a sports show and a film). "
        "The envelope with data null, one accepted shape of the empty 200; the exact "
        "body is assumed.",
    )

    # Updates.
    exchange(
        "listUpdates",
        "20241105060000",
        "/updates/20241105060000",
        envelope(
            [
                {"channelId": 34, "day": "20241105", "lastUpdate": "2024-11-05T08:41:17.53"},
                {"channelId": 4, "day": "20241107", "lastUpdate": "2024-11-05T06:15:42.8765"},
                {"channelId": 192, "day": "20241110", "lastUpdate": "2024-11-05T07:02:09.1"},
            ]
        ),
        stamp="2024-11-05T09:30:00Z",
        synthetic=["/data"],
        assumed=["/data"],
        notes="Synthetic. The ordinary case: every returned lastUpdate is later than `since` "
        "(2024-11-05 06:00:00); each channel/day must be re-imported in full, deletes are "
        "never reported [doc].",
    )
    exchange(
        "listUpdates",
        "20241106000000-earlier",
        "/updates/20241106000000",
        envelope(
            [
                {"channelId": 34, "day": "20241105", "lastUpdate": "2024-11-05T08:41:17.53"},
                {"channelId": 111, "day": "20241110", "lastUpdate": "2024-11-06T03:12:55.0271"},
            ]
        ),
        stamp="2024-11-06T10:30:00Z",
        synthetic=["/data"],
        assumed=["/data"],
        notes="Synthetic. EARLIER lastUpdate case [doc]: /data/0/lastUpdate "
        "(2024-11-05T08:41:17.53) is earlier than `since` (2024-11-06 00:00:00), so the "
        "broadcasts of Canal+ on 5 November did not change but some programme data did: "
        "the synopsis of episode 50311 (its lastUpdate is 2024-11-06T10:05:33.9). "
        "/data/1 is an ordinary change (later than `since`).",
    )
    exchange(
        "listUpdates",
        "empty-20241116235959",
        "/updates/20241116235959",
        {},
        stamp="2024-11-07T05:12:00Z",
        assumed=[""],
        notes="Empty result: nothing changed since a date-time after the recording. Bare {} "
        "(the mock's default; the exact body is assumed).",
    )


# --------------------------------------------------------------------------------------------
# Persons
# --------------------------------------------------------------------------------------------

PERSONS: dict[int, Json] = {
    1001: {
        "firstName": "Ridley",
        "lastName": "Scott",
        "gender": "M",
        "birthDate": "1937-11-30",
        "birthPlace": ("South Shields (Royaume-Uni)", "South Shields, England"),
        "nationalities": ["GB"],
        "professions": (["Réalisateur", "Producteur"], ["Director", "Producer"]),
        "lastUpdate": "2024-03-11T13:52:08.6",
    },
    1002: {
        "firstName": "Harrison",
        "lastName": "Ford",
        "gender": "M",
        "birthDate": "1942-07-13",
        "birthPlace": ("Chicago (États-Unis)", "Chicago, Illinois"),
        "nationalities": ["US"],
        "professions": (["Acteur"], ["Actor"]),
        "lastUpdate": "2024-05-02T09:14:27.27",
    },
    1003: {
        "firstName": "Rutger",
        "lastName": "Hauer",
        "gender": "M",
        "birthDate": "1944-01-23",
        "birthPlace": ("Breukelen (Pays-Bas)", "Breukelen, Netherlands"),
        "deathDate": "2019-07-19",
        "nationalities": ["NL"],
        "professions": (["Acteur"], ["Actor"]),
        "lastUpdate": "2019-07-24T16:40:11.903",
    },
    1005: {
        "firstName": "Russell",
        "lastName": "Crowe",
        "gender": "M",
        "birthDate": "1964-04-07",
        "birthPlace": ("Wellington (Nouvelle-Zélande)", "Wellington, New Zealand"),
        "nationalities": ["NZ"],
        "professions": (["Acteur"], ["Actor"]),
        "lastUpdate": "2023-12-01T08:00:00",
    },
    1009: {
        "firstName": "Audrey",
        "lastName": "Tautou",
        "gender": "F",
        "birthDate": "1976-08-09",
        "birthPlace": ("Beaumont (France)", "Beaumont, France"),
        "nationalities": ["FR"],
        "professions": (["Actrice"], ["Actress"]),
        "lastUpdate": "2024-02-19T19:22:35.44",
    },
    1010: {
        "firstName": "Mathieu",
        "lastName": "Kassovitz",
        "gender": "M",
        "birthDate": "1967-08-03",
        "birthPlace": ("Paris (France)", "Paris, France"),
        "nationalities": ["FR"],
        "professions": (["Réalisateur", "Acteur", "Producteur"], ["Director", "Actor", "Producer"]),
        "lastUpdate": "2024-09-09T11:11:11.1111111",
    },
    1014: {
        "firstName": "Omar",
        "lastName": "Sy",
        "gender": "M",
        "birthDate": "1978-01-20",
        "birthPlace": ("Trappes (France)", "Trappes, France"),
        "nationalities": ["FR"],
        "professions": (["Acteur", "Humoriste"], ["Actor", "Comedian"]),
        "lastUpdate": "2024-06-28T15:05:59.12",
    },
    1015: {
        "firstName": "Vincent",
        "lastName": "Cassel",
        "gender": "M",
        "birthDate": "1966-11-23",
        "birthPlace": ("Paris (France)", "Paris, France"),
        "nationalities": ["FR"],
        "professions": (["Acteur"], ["Actor"]),
        "lastUpdate": "2024-01-15T07:30:04.5",
    },
}

BIOGRAPHIES: dict[tuple[int, str], str] = {
    (1001, "fr"): "Ridley Scott, né le 30 novembre 1937 à South Shields, est un réalisateur et "
    "producteur britannique. Il réalise notamment Alien (1979), Blade Runner "
    "(1982), Thelma et Louise (1991) et Gladiator (2000), Oscar du meilleur film.",
    (1001, "en"): "Sir Ridley Scott (born 30 November 1937 in South Shields) is a British film "
    "director and producer, known for Alien (1979), Blade Runner (1982), Thelma & "
    "Louise (1991) and Gladiator (2000), which won the Academy Award for Best "
    "Picture.",
    (1002, "fr"): "Harrison Ford, né le 13 juillet 1942 à Chicago, est un acteur américain, "
    "célèbre pour les rôles de Han Solo dans Star Wars, d'Indiana Jones et de Rick "
    "Deckard dans Blade Runner (1982).",
    (1009, "fr"): "Audrey Tautou, née le 9 août 1976 à Beaumont, est une actrice française. "
    "César du meilleur espoir féminin pour Vénus Beauté (Institut), elle connaît un "
    "succès international avec Le Fabuleux Destin d'Amélie Poulain (2001).",
    (1010, "fr"): "Mathieu Kassovitz, né le 3 août 1967 à Paris, est un réalisateur, acteur et "
    "producteur français. Prix de la mise en scène au Festival de Cannes 1995 pour "
    "La Haine, il joue Nino dans Le Fabuleux Destin d'Amélie Poulain et Malotru "
    "dans la série Le Bureau des légendes.",
    (1014, "fr"): "Omar Sy, né le 20 janvier 1978 à Trappes, est un acteur et humoriste "
    "français. Révélé avec Fred Testot dans le duo Omar et Fred, il reçoit le "
    "César du meilleur acteur en 2012 pour Intouchables.",
}
WIKI = {
    1001: "Ridley_Scott",
    1002: "Harrison_Ford",
    1009: "Audrey_Tautou",
    1010: "Mathieu_Kassovitz",
    1014: "Omar_Sy",
}

# (name, category fr, category en, year, result, contentId or None, title fr, title en)
AWARDS: dict[int, list[tuple[Any, ...]]] = {
    1001: [
        (
            "Oscars",
            "Meilleur réalisateur",
            "Best Director",
            1992,
            "nominated",
            None,
            "Thelma et Louise",
            "Thelma & Louise",
        ),
        (
            "Oscars",
            "Meilleur réalisateur",
            "Best Director",
            2001,
            "nominated",
            7520,
            "Gladiator",
            "Gladiator",
        ),
        (
            "Oscars",
            "Meilleur réalisateur",
            "Best Director",
            2002,
            "nominated",
            None,
            "La Chute du faucon noir",
            "Black Hawk Down",
        ),
    ],
    1002: [
        ("Oscars", "Meilleur acteur", "Best Actor", 1986, "nominated", None, "Witness", "Witness"),
        (
            "Golden Globes",
            "Prix Cecil B. DeMille",
            "Cecil B. DeMille Award",
            2002,
            "won",
            None,
            None,
            None,
        ),
        (
            "Festival de Cannes",
            "Palme d'or d'honneur",
            "Honorary Palme d'Or",
            2023,
            "won",
            None,
            None,
            None,
        ),
    ],
    1005: [
        (
            "Oscars",
            "Meilleur acteur",
            "Best Actor",
            2000,
            "nominated",
            None,
            "Révélations",
            "The Insider",
        ),
        ("Oscars", "Meilleur acteur", "Best Actor", 2001, "won", 7520, "Gladiator", "Gladiator"),
        (
            "Oscars",
            "Meilleur acteur",
            "Best Actor",
            2002,
            "nominated",
            None,
            "Un homme d'exception",
            "A Beautiful Mind",
        ),
    ],
    1009: [
        (
            "César",
            "Meilleur espoir féminin",
            "Most Promising Actress",
            2000,
            "won",
            None,
            "Vénus Beauté (Institut)",
            "Venus Beauty Institute",
        ),
        (
            "César",
            "Meilleure actrice",
            "Best Actress",
            2002,
            "nominated",
            7610,
            "Le Fabuleux Destin d'Amélie Poulain",
            "Amélie",
        ),
    ],
    1010: [
        (
            "Festival de Cannes",
            "Prix de la mise en scène",
            "Best Director",
            1995,
            "won",
            7555,
            "La Haine",
            "La Haine",
        ),
        ("César", "Meilleur film", "Best Film", 1996, "won", 7555, "La Haine", "La Haine"),
    ],
    1014: [
        (
            "César",
            "Meilleur acteur",
            "Best Actor",
            2012,
            "won",
            8342,
            "Intouchables",
            "The Intouchables",
        )
    ],
    1015: [
        (
            "César",
            "Meilleur acteur",
            "Best Actor",
            2009,
            "won",
            None,
            "Mesrine : L'Instinct de mort",
            "Mesrine: Killer Instinct",
        )
    ],
}
AWARDS_EN = {
    "Oscars": "Academy Awards",
    "César": "César Awards",
    "Festival de Cannes": "Cannes Film Festival",
    "Golden Globes": "Golden Globes",
}


def person(pid: int, lang: str) -> Json:
    """A person's standard data."""
    p = PERSONS[pid]
    i = _lang_index(lang)
    out: Json = {
        "id": pid,
        "firstName": p["firstName"],
        "lastName": p["lastName"],
        "fullName": NAMES[pid],
        "gender": p["gender"],
        "birthDate": p["birthDate"],
        "birthPlace": p["birthPlace"][i],
    }
    if "deathDate" in p:
        out["deathDate"] = p["deathDate"]
    out.update(
        {
            "nationalities": p["nationalities"],
            "professions": p["professions"][i],
            "lastUpdate": p["lastUpdate"],
        }
    )
    return out


def awards(pid: int, lang: str) -> list[Json]:
    """The awards attached to a person (year: the ceremony's)."""
    out = []
    for n, (name, cat_fr, cat_en, year, result, cid, t_fr, t_en) in enumerate(AWARDS[pid], 1):
        item: Json = {
            "id": pid * 100 + n,
            "name": name if lang == "fr" else AWARDS_EN[name],
            "category": cat_fr if lang == "fr" else cat_en,
            "year": year,
            "result": result,
        }
        if cid is not None:
            item["contentId"] = cid
        title = t_fr if lang == "fr" else t_en
        if title is not None:
            item["contentTitle"] = title
        out.append(item)
    return out


def build_persons() -> None:
    stamp_n = 0

    def stamp() -> str:
        nonlocal stamp_n
        stamp_n += 1
        return f"2024-11-07T09:{stamp_n:02d}:{stamp_n * 7 % 60:02d}Z"

    who = "True of the person: {facts}. The id, lastUpdate and field names are made up or assumed."
    for pid in PERSONS:
        for lang in ("fr", "en") if pid == 1001 else ("fr",):
            p = person(pid, lang)
            facts = f"born {p['birthDate']} in {PERSONS[pid]['birthPlace'][1]}" + (
                f", died {p['deathDate']}" if "deathDate" in p else ""
            )
            exchange(
                "getPerson",
                f"{pid}" if lang == "fr" else f"{pid}-{lang}",
                f"/persons/{pid}",
                envelope(p),
                stamp=stamp(),
                lang=None if lang == "fr" else lang,
                synthetic=["/data/id", "/data/lastUpdate"],
                assumed=["/data/gender", "/data/professions"],
                notes="Synthetic. " + who.format(facts=facts),
            )
    exchange(
        "getPerson",
        "empty-999001",
        "/persons/999001",
        {},
        stamp=stamp(),
        assumed=[""],
        notes="Empty result: no person with this id. Bare {} (the mock's default).",
    )
    exchange(
        "getPerson",
        "empty-999002",
        "/persons/999002",
        envelope({}),
        stamp=stamp(),
        assumed=[""],
        notes="Empty result: no person with this id. The envelope with data {}, one of "
        "the accepted shapes of the empty 200 (the exact body is assumed).",
    )

    for (pid, lang), text in BIOGRAPHIES.items():
        data = {
            "personId": pid,
            "text": text,
            "source": "Wikipedia",
            "url": f"https://{lang}.wikipedia.org/wiki/{WIKI[pid]}",
            "lang": lang,
            "lastUpdate": PERSONS[pid]["lastUpdate"],
        }
        exchange(
            "getPersonBiography",
            f"{pid}" if lang == "fr" else f"{pid}-{lang}",
            f"/persons/{pid}/biography",
            envelope(data),
            stamp=stamp(),
            lang=None if lang == "fr" else lang,
            synthetic=["/data/lastUpdate"],
            assumed=["/data/source", "/data/url"],
            notes="Synthetic. A short, true biography in the manner of Wikipedia's lead "
            "(not a copy); field names are assumed.",
        )
    exchange(
        "getPersonBiography",
        "empty-999001",
        "/persons/999001/biography",
        envelope(None),
        stamp=stamp(),
        assumed=[""],
        notes="Empty result: no biography for this id. The envelope with data null, one of "
        "the accepted shapes of the empty 200 (the exact body is assumed).",
    )

    for pid in (1001, 1002, 1009, 1014):
        data = image(
            60000 + pid,
            f"{IMG}/persons/{pid}/casting.jpg",
            None,
            "casting",
            400,
            600,
            copyright="Plurimedia",
        )
        exchange(
            "getPersonImage",
            f"{pid}",
            f"/persons/{pid}/image",
            envelope(data),
            stamp=stamp(),
            synthetic=["/data"],
            assumed=["/data/type", "/data/copyright"],
            notes=f"Synthetic. The casting image of {NAMES[pid]}: url, size and copyright "
            "are made up; no hierarchy (it is not a broadcast image).",
        )
    exchange(
        "getPersonImage",
        "empty-999001",
        "/persons/999001/image",
        {},
        stamp=stamp(),
        assumed=[""],
        notes="Empty result: no image for this id. Bare {} (the mock's default).",
    )

    for pid in AWARDS:
        for lang in ("fr", "en") if pid == 1001 else ("fr",):
            exchange(
                "getPersonAwards",
                f"{pid}" if lang == "fr" else f"{pid}-{lang}",
                f"/persons/{pid}/awards",
                envelope(awards(pid, lang)),
                stamp=stamp(),
                lang=None if lang == "fr" else lang,
                synthetic=[f"/data/{i}/id" for i in range(len(AWARDS[pid]))],
                assumed=["/data"],
                notes=f"Synthetic. Real awards and nominations of {NAMES[pid]}; `year` is "
                "the ceremony's (or the festival's); contentId links to a getContent "
                "fixture when there is one. Award ids and field names are made up "
                "or assumed.",
            )
    exchange(
        "getPersonAwards",
        "empty-999001",
        "/persons/999001/awards",
        envelope([]),
        stamp=stamp(),
        assumed=[""],
        notes="Empty result: no awards for this id. The envelope with data [], one of the "
        "accepted shapes of the empty 200 (the exact body is assumed).",
    )


# --------------------------------------------------------------------------------------------
# Empty results and errors
# --------------------------------------------------------------------------------------------


def build_edges() -> None:
    exchange(
        "getContent",
        "empty-999999999",
        "/contents/999999999",
        {},
        stamp="2024-11-07T08:30:00Z",
        assumed=[""],
        notes="Empty result: no content with this id answers 200 with an empty JSON [doc], "
        "never 404. Bare {} (the mock's default; the exact body is assumed).",
    )
    exchange(
        "getContent",
        "400-not-an-integer",
        "/contents/abc",
        {"Message": "The request is invalid."},
        status=400,
        stamp="2024-11-07T08:30:20Z",
        assumed=["", "/Message"],
        notes="ASP.NET Web API's answer to an id that is not an integer [assumed]; written "
        "by the backend, so it carries the provider's headers.",
    )
    exchange(
        "getContent",
        "401-missing-key",
        "/contents/8343",
        {"statusCode": 401, "message": MISSING_KEY},
        status=401,
        stamp="2024-11-07T08:30:40Z",
        headers=gateway_headers("2024-11-07T08:30:40Z"),
        notes="Gateway error [apim]: the request carried no Ocp-Apim-Subscription-Key "
        "header and no subscription-key query parameter. The exact message is the "
        "gateway's; its headers (no provider set) are assumed. The path is used by "
        "no other fixture, on purpose.",
    )
    exchange(
        "getPersonAwards",
        "401-invalid-key",
        "/persons/2002/awards",
        {"statusCode": 401, "message": INVALID_KEY},
        status=401,
        stamp="2024-11-07T09:40:00Z",
        headers=gateway_headers("2024-11-07T09:40:00Z"),
        notes="Gateway error [apim]: the key was unknown or regenerated away (the key "
        "header was sent; its value is never stored). The path is used by no other "
        "fixture, on purpose.",
    )
    exchange(
        "listUpdates",
        "429-rate-limited",
        "/updates/20241107000000",
        {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 60 seconds."},
        status=429,
        stamp="2024-11-07T09:41:00Z",
        headers=gateway_headers("2024-11-07T09:41:00Z", retry_after=60),
        notes="Gateway error [apim]: rate limit exceeded, Retry-After 60. Whether the "
        "provider sets rate limits, and their values, is not public.",
    )
    exchange(
        "getPerson",
        "403-quota-exhausted",
        "/persons/2001",
        {
            "statusCode": 403,
            "message": "Out of call volume quota. Quota will be replenished in 03:30:56.",
        },
        status=403,
        stamp="2024-11-07T09:42:00Z",
        headers=gateway_headers("2024-11-07T09:42:00Z", retry_after=12656),
        notes="Gateway error [apim]: call quota exhausted (403, not 429), Retry-After the "
        "same 3 h 30 min 56 s in seconds. Whether the provider sets quotas is not "
        "public. The path is used by no other fixture, on purpose.",
    )


def build() -> dict[tuple[str, str], Json]:
    """Every fixture file to write, keyed by (operationId, name)."""
    FILES.clear()
    CONTENTS.clear()
    build_contents()
    build_reference_lists()
    build_schedules()
    build_persons()
    build_edges()
    return dict(FILES)


# --------------------------------------------------------------------------------------------
# The bundled timeline (fixtures/timelines/ and fixtures/scenarios.json), derived from the
# corpus above: Canal+'s Tuesday evening of 5 November 2024, aired again a week later, on
# 12 November, and changed along the way:
# 1. schedule (published Monday 11 November, 18:00): three broadcasts, each content the
#    corpus's own (Le Bureau des légendes, episodes 1 and 2, then La Haine).
# 2. edits (Tuesday 09:00): La Haine removed, episode 2 moved from 22:05 to 22:15, the synopsis
#    of episode 1 edited; the updates report Canal+/20241112 with a lastUpdate later than a
#    poll made after step 1.
# 3. content (Tuesday 15:00): a content-only change (episode 2's short synopsis): the
#    broadcasts stay as they are, and the updates report Canal+/20241112 with the same
#    lastUpdate as in step 2, earlier than a poll made after step 2 [doc].
# --------------------------------------------------------------------------------------------

TIMELINE_NAME = "canal-plus-evening"
TL_CHANNEL, TL_DAY, TL_BASE_DAY = 34, "20241112", "20241105"
# (folder, step name, published at, the day's lastUpdate reported by the updates)
TL_STEPS = (
    ("1-schedule", "schedule", "20241111180000", "2024-11-11T17:58:03.41"),
    ("2-edits", "edits", "20241112090000", "2024-11-12T08:47:12.205"),
    ("3-content", "content", "20241112150000", "2024-11-12T08:47:12.205"),
)
TL_SYNOPSIS = (
    " Ce qu'il a vécu en Syrie, il ne le raconte à personne, pas même à ceux qui l'ont formé."
)
TL_SHORT = "Malotru reprend ses fonctions au Bureau des légendes, sous une nouvelle couverture."
TL_NOTES = (
    "Synthetic timeline canal-plus-evening, step 1: Canal+'s evening of 5 November aired "
    "again on 12 November (new broadcast ids), each content the corpus's own.",
    "Synthetic timeline canal-plus-evening, step 2: broadcast 901203 (La Haine) removed, "
    "901202 moved from 22:05 to 22:15, the synopsis of content 50311 edited. Deletes are "
    "never reported [doc]: only the re-imported day says 901203 is gone.",
    "Synthetic timeline canal-plus-evening, step 3: only the short synopsis of content "
    "50312 changed; the broadcasts and their lastUpdate did not.",
)


def _week_later(stamp: str) -> str:
    """A date-time of 5 or 6 November moved a week later."""
    return f"{stamp[:8]}{int(stamp[8:10]) + 7:02d}{stamp[10:]}"


def _timeline_file(template: Json, path: str, data: Any, at: str, notes: str) -> Json:
    """An exchange like ``template`` (same request and provider headers), published ``at``."""
    local = datetime.strptime(at, "%Y%m%d%H%M%S").replace(tzinfo=ZoneInfo("Europe/Paris"))
    when = local.astimezone(UTC)  # the API's times are Paris time [assumed], date is GMT
    headers = {**template["response"]["headers"], "date": format_datetime(when, usegmt=True)}
    return {
        "request": {"method": "GET", "path": path, "headers": dict(template["request"]["headers"])},
        "response": {"status": 200, "headers": headers, "body": envelope(data)},
        "meta": {
            "operationId": template["meta"]["operationId"],
            "source": "synthetic",
            "recorded": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "account": "full",
            "synthetic": ["/data"],
            "notes": notes,
        },
    }


def build_timeline(corpus: dict[tuple[str, str], Json]) -> dict[str, Json]:
    """The timeline's files and scenarios.json, keyed by their path in the fixtures folder,
    derived from the corpus that :func:`build` returns."""
    schedule = corpus[("listBroadcasts", f"{TL_CHANNEL}-{TL_BASE_DAY}")]
    contents = {cid: corpus[("getContent", str(cid))] for cid in (50311, 50312)}
    edited = {cid: copy.deepcopy(c["response"]["body"]["data"]) for cid, c in contents.items()}
    broadcasts = copy.deepcopy(schedule["response"]["body"]["data"])
    for number, broadcast in enumerate(broadcasts, start=1):
        old, new = f"/broadcasts/{900200 + number}", f"/broadcasts/{901200 + number}"
        broadcast["id"] = 901200 + number
        broadcast["start"] = _week_later(broadcast["start"])
        broadcast["end"] = _week_later(broadcast["end"])
        broadcast["lastUpdate"] = TL_STEPS[0][3]
        for image in broadcast["images"]:
            image["url"] = image["url"].replace(old, new)
    day_path = f"/v1/api/v1/broadcasts/{TL_CHANNEL}/{TL_DAY}/{TL_DAY}"
    files: dict[str, Json] = {}

    def publish(step: int, changed: tuple[int, ...] = ()) -> None:
        folder, _, at, _ = TL_STEPS[step]
        base = f"timelines/{TIMELINE_NAME}/{folder}"
        files[f"{base}/listBroadcasts/{TL_CHANNEL}-{TL_DAY}.json"] = _timeline_file(
            schedule, day_path, copy.deepcopy(broadcasts), at, TL_NOTES[step]
        )
        for cid in changed:
            files[f"{base}/getContent/{cid}.json"] = _timeline_file(
                contents[cid], f"{BASE}/contents/{cid}", edited[cid], at, TL_NOTES[step]
            )

    publish(0)
    broadcasts.pop()  # step 2: La Haine removed, episode 2 moved, episode 1's synopsis edited
    broadcasts[1].update(
        start="2024-11-12T22:15:00", end="2024-11-12T23:10:00", lastUpdate=TL_STEPS[1][3]
    )
    edited[50311].update(
        synopsis=edited[50311]["synopsis"] + TL_SYNOPSIS, lastUpdate="2024-11-12T08:44:51.6"
    )
    broadcasts[0]["content"] = copy.deepcopy(edited[50311])
    publish(1, (50311,))
    edited[50312].update(shortSynopsis=TL_SHORT, lastUpdate="2024-11-12T14:52:08.37")
    broadcasts[1]["content"] = copy.deepcopy(edited[50312])  # step 3: a content-only change
    publish(2, (50312,))
    files["scenarios.json"] = timeline_scenarios()
    return files


def timeline_scenarios() -> Json:
    """The scenarios file: the bundled timeline only (a sequence would change every user's
    answers; tests add their own)."""
    descriptions = (
        "The schedule of Canal+ on 12 November, as published the day before.",
        "One broadcast removed (901203), one moved (901202), one content edited (50311).",
        "A content-only change (50312): the reported lastUpdate is earlier than a poll "
        "made after step 2.",
    )
    steps = [
        {
            "name": name,
            "at": at,
            "fixtures": f"timelines/{TIMELINE_NAME}/{folder}",
            "updates": [{"channelId": TL_CHANNEL, "day": TL_DAY, "lastUpdate": last_update}],
            "description": description,
        }
        for (folder, name, at, last_update), description in zip(TL_STEPS, descriptions, strict=True)
    ]
    return {
        "description": "Scenarios of the bundled fixtures (written by tools/make_fixtures.py).",
        "timelines": [
            {
                "name": TIMELINE_NAME,
                "description": "The incremental update workflow on Canal+, 12 November 2024.",
                "steps": steps,
            }
        ],
    }


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else ROOT / "fixtures"
    files = build()
    written = {f"{op}/{name}.json": data for (op, name), data in files.items()}
    written.update(build_timeline(files))
    for relative, data in sorted(written.items()):
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if not path.exists() or path.read_text("utf-8") != text:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, "utf-8")
            tmp.replace(path)
    print(
        f"{len(files)} fixture files and the timeline under {target} "
        "(getContent/7488.json untouched)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
