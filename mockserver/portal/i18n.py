"""The portal's words in English and French, and the choice of language per request."""

from __future__ import annotations

from flask import request, session

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"

_STRINGS: dict[str, dict[str, str]] = {
    "portal": {"en": "Pivot developer portal", "fr": "Portail développeur Pivot"},
    "mock_note": {
        "en": "pivotkit mock: not the provider's portal; demo data only.",
        "fr": "Simulateur pivotkit : pas le portail du fournisseur ; données de démo.",
    },
    "skip": {"en": "Skip to content", "fr": "Aller au contenu"},
    "nav": {"en": "Main", "fr": "Principal"},
    "profile": {"en": "Profile", "fr": "Profil"},
    "apis": {"en": "APIs", "fr": "API"},
    "reports": {"en": "Reports", "fr": "Rapports"},
    "signed_in_as": {"en": "Signed in as", "fr": "Connecté en tant que"},
    "logout": {"en": "Sign out", "fr": "Se déconnecter"},
    "language": {"en": "Language", "fr": "Langue"},
    "login_title": {"en": "Sign in", "fr": "Connexion"},
    "login_intro": {
        "en": "Sign in with an account of the mock's accounts file.",
        "fr": "Connectez-vous avec un compte du fichier de comptes du simulateur.",
    },
    "account": {"en": "Account", "fr": "Compte"},
    "password": {"en": "Password", "fr": "Mot de passe"},
    "login_button": {"en": "Sign in", "fr": "Se connecter"},
    "login_failed": {"en": "Wrong account or password.", "fr": "Compte ou mot de passe incorrect."},
    "too_many_title": {"en": "Too many attempts", "fr": "Trop de tentatives"},
    "too_many": {
        "en": "Too many failed sign-ins for this account from your address. "
        "Try again in {seconds} seconds.",
        "fr": "Trop d'échecs de connexion pour ce compte depuis votre adresse. "
        "Réessayez dans {seconds} secondes.",
    },
    "csrf_title": {"en": "Form refused", "fr": "Formulaire refusé"},
    "csrf": {
        "en": "This form expired or was not sent by this portal. Go back, reload the page "
        "and try again.",
        "fr": "Ce formulaire a expiré ou ne vient pas de ce portail. Revenez en arrière, "
        "rechargez la page et réessayez.",
    },
    "not_found_title": {"en": "Page not found", "fr": "Page introuvable"},
    "not_found": {"en": "No such page in the portal.", "fr": "Cette page n'existe pas."},
    "back": {"en": "Back to the portal", "fr": "Retour au portail"},
    "logged_out": {"en": "You are signed out.", "fr": "Vous êtes déconnecté."},
    "login_needed": {"en": "Please sign in first.", "fr": "Connectez-vous d'abord."},
    "keys": {"en": "Subscription keys", "fr": "Clés d'abonnement"},
    "keys_intro": {
        "en": "Send a key in the {header} header. Use the primary "
        "key; keep the secondary one for rotation. Regenerate a key that may "
        "have leaked: the old value stops working at once.",
        "fr": "Envoyez une clé dans l'en-tête {header}. Utilisez la "
        "clé primaire ; gardez la secondaire pour la rotation. Régénérez une clé "
        "compromise : l'ancienne valeur cesse aussitôt de fonctionner.",
    },
    "slot_primary": {"en": "Primary key", "fr": "Clé primaire"},
    "slot_secondary": {"en": "Secondary key", "fr": "Clé secondaire"},
    "short_primary": {"en": "primary", "fr": "primaire"},
    "short_secondary": {"en": "secondary", "fr": "secondaire"},
    "show": {"en": "Show", "fr": "Afficher"},
    "hide": {"en": "Hide", "fr": "Masquer"},
    "copy": {"en": "Copy", "fr": "Copier"},
    "copied": {"en": "Copied to the clipboard.", "fr": "Copié dans le presse-papiers."},
    "copy_failed": {
        "en": "Copy failed: select the text and copy it by hand.",
        "fr": "Échec de la copie : sélectionnez le texte et copiez-le.",
    },
    "regenerate": {"en": "Regenerate", "fr": "Régénérer"},
    "regenerated": {
        "en": "The {slot} was regenerated; the old value no longer works.",
        "fr": "La {slot} a été régénérée ; l'ancienne valeur ne fonctionne plus.",
    },
    "rights": {"en": "Rights", "fr": "Droits"},
    "operations_allowed": {"en": "Operations", "fr": "Opérations"},
    "fields_allowed": {"en": "Fields", "fr": "Champs"},
    "withheld": {"en": "Withheld fields", "fr": "Champs retenus"},
    "everything": {"en": "all", "fr": "tout"},
    "api_version": {"en": "API version", "fr": "Version de l'API"},
    "choose": {"en": "Show", "fr": "Afficher"},
    "servers": {"en": "Servers", "fr": "Serveurs"},
    "operations": {"en": "Operations", "fr": "Opérations"},
    "method": {"en": "Method", "fr": "Méthode"},
    "path": {"en": "Path", "fr": "Chemin"},
    "summary": {"en": "Summary", "fr": "Résumé"},
    "path_source": {"en": "Path source", "fr": "Source du chemin"},
    "source_doc": {"en": "documented", "fr": "documenté"},
    "source_assumed": {"en": "assumed", "fr": "supposé"},
    "not_allowed": {"en": "outside your rights: 401", "fr": "hors de vos droits : 401"},
    "parameters": {"en": "Parameters", "fr": "Paramètres"},
    "name": {"en": "Name", "fr": "Nom"},
    "location": {"en": "In", "fr": "Dans"},
    "type": {"en": "Type", "fr": "Type"},
    "required": {"en": "required", "fr": "obligatoire"},
    "required_col": {"en": "Required", "fr": "Obligatoire"},
    "optional": {"en": "optional", "fr": "facultatif"},
    "description": {"en": "Description", "fr": "Description"},
    "none": {"en": "none", "fr": "aucun"},
    "try_it": {"en": "Try it", "fr": "Essayer"},
    "try_intro": {
        "en": "The portal calls the mock's API for you with your account's key; the "
        "key never appears in a URL.",
        "fr": "Le portail appelle l'API du simulateur pour vous avec la clé de votre "
        "compte ; la clé n'apparaît jamais dans une URL.",
    },
    "key_to_use": {"en": "Subscription key", "fr": "Clé d'abonnement"},
    "remove": {"en": "Remove", "fr": "Retirer"},
    "add": {"en": "Add", "fr": "Ajouter"},
    "removed_params": {"en": "Removed parameters", "fr": "Paramètres retirés"},
    "send": {"en": "Send", "fr": "Envoyer"},
    "missing_param": {"en": "{name} is required.", "fr": "{name} est obligatoire."},
    "bad_param": {
        "en": "{name} cannot hold '/', '?' or '#'.",
        "fr": "{name} ne peut contenir ni '/', ni '?', ni '#'.",
    },
    "no_response": {
        "en": "The mock closed the connection without a full answer ({name}): a "
        "drop or truncate fault is configured.",
        "fr": "Le simulateur a fermé la connexion sans réponse complète ({name}) : "
        "une panne drop ou truncate est configurée.",
    },
    "request": {"en": "Request", "fr": "Requête"},
    "response": {"en": "Response", "fr": "Réponse"},
    "status": {"en": "Status", "fr": "Statut"},
    "headers": {"en": "Headers", "fr": "En-têtes"},
    "body": {"en": "Body", "fr": "Corps"},
    "truncated": {"en": "(truncated)", "fr": "(tronqué)"},
    "samples": {"en": "Code samples", "fr": "Exemples de code"},
    "samples_intro": {
        "en": "Set PIVOT_API_KEY in your environment first; the samples never contain the key.",
        "fr": "Définissez d'abord PIVOT_API_KEY dans votre environnement ; les "
        "exemples ne contiennent jamais la clé.",
    },
    "usage": {"en": "Usage", "fr": "Utilisation"},
    "reports_intro": {
        "en": "Calls of your account to the API, per day (UTC), operation and key.",
        "fr": "Appels de votre compte à l'API, par jour (UTC), opération et clé.",
    },
    "no_usage": {
        "en": "No call yet. Try an operation under APIs.",
        "fr": "Aucun appel pour l'instant. Essayez une opération sous API.",
    },
    "total": {"en": "Total", "fr": "Total"},
    "total_calls": {"en": "Total calls", "fr": "Total des appels"},
    "calls": {"en": "Calls", "fr": "Appels"},
    "day": {"en": "Day", "fr": "Jour"},
    "operation": {"en": "Operation", "fr": "Opération"},
    "key": {"en": "Key", "fr": "Clé"},
    "per_day": {"en": "Calls per day", "fr": "Appels par jour"},
    "per_operation": {"en": "Calls per operation", "fr": "Appels par opération"},
    "detail": {"en": "Detail", "fr": "Détail"},
    "op_chart_desc": {
        "en": "Horizontal bar chart of calls per operation, stacked by key; the "
        "table beside it holds the same numbers.",
        "fr": "Barres horizontales des appels par opération, empilés par clé ; le "
        "tableau voisin donne les mêmes nombres.",
    },
    "chart_desc": {
        "en": "Bar chart of calls per day, stacked by key; the tables below hold the same numbers.",
        "fr": "Histogramme des appels par jour, empilés par clé ; les tableaux "
        "ci-dessous donnent les mêmes nombres.",
    },
}


def current_language() -> str:
    """The language of this request: the session's choice, else the browser's, else English."""
    chosen = session.get("ui")
    if chosen in LANGUAGES:
        return str(chosen)
    best = request.accept_languages.best_match(LANGUAGES)
    return best or DEFAULT_LANGUAGE


def translate(key: str, **values: object) -> str:
    """The string ``key`` in the current language, formatted with ``values``."""
    entry = _STRINGS.get(key)
    if entry is None:
        return key
    text = entry.get(current_language(), entry[DEFAULT_LANGUAGE])
    return text.format(**values) if values else text


def string_keys() -> frozenset[str]:
    """Every string key (tests check each has both languages)."""
    return frozenset(_STRINGS)


def entry(key: str) -> dict[str, str]:
    """Both languages of one string."""
    return dict(_STRINGS[key])
