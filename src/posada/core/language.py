"""Which language a guest wrote in: Spanish, English, Portuguese or French.

py3langid's character model (shipped inside its wheel, restricted here to the four
languages) decides when it is sure. On two or three words ("wifi pass?", "hola") it often
is not, and then a short list of each language's common words decides; when neither
can tell, Spanish, the hotels' own language. bench/languages.py compares this with the
word list alone and with other detectors.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any, Literal, cast

Language = Literal["es", "en", "pt", "fr"]
LANGUAGES: tuple[Language, ...] = ("es", "en", "pt", "fr")
DEFAULT: Language = "es"
# Below this probability (of four; 0.25 is "no idea") the model's guess gives way to the
# words. On the tune half of bench/labels/languages.yaml anything from 0.4 to 0.9 does as
# well; above 0.52 a lone "hola" (0.52 English to the model) is Spanish.
SURE = 0.7
MAX_CHARS = 500  # the opening of a long message tells its language as well as all of it

# Common function words and hotel words of each language, without accents (the lookup
# strips them: guests often leave them out). A word in several lists counts for each.
_LISTS: dict[Language, str] = {
    "es": """el los las del al y o de en es son esta estan hay tiene tienen tengo puedo
            puede pueden para por con una un mi mis me se lo le que q cual cuales como donde
            dnd cuando cuanto cuanta hora horario clave contrasena habitacion cuarto desayuno
            almuerzo cena piscina pileta playa llegar llego aeropuerto precio cuesta sale
            gracias hola necesito quiero quisiera hacer porfa favor toallas tarjeta maletas
            equipaje despues antes manana hoy noche hasta abre cierra cierran abierto cerca
            lejos efectivo ducha agua caliente fria funciona llave recepcion estacionamiento
            cochera servicio incluido aire acondicionado limpieza sabanas almohada cama bebe
            cuna mascotas perro dinero cambiar cargador olvide reservar mesa gimnasio usted
            ustedes nosotros ahora tarde temprano salida entrada mas""",
    "en": """the an is are was what whats when where how which who can could would do does
            did my your our i we you it to of for in on at with and or there have has time
            password pass room breakfast lunch dinner pool beach get from price cost much
            thanks thx thank hello hi need want please pls towels card bags luggage after
            before tomorrow tmrw today tonight night until open close closed near nearby far
            cash shower hot cold water working key reception parking service included ac air
            cleaning sheets pillow bed baby crib pets dog money change charger forgot book
            table gym any some early late leave checkout isnt doesnt dont""",
    "pt": """o os as do da dos das no na nos nas ao de em e um uma meu minha seu sua voce
            voces vc vcs tem temos tenho posso pode podem para pra pro por com que qual quais
            como onde quando quanto quanta horas horario senha quarto cafe manha almoco jantar
            piscina praia chegar chego aeroporto preco custa obrigado obrigada oi ola preciso
            quero queria fazer favor toalhas cartao malas bagagem depois antes amanha hoje
            noite ate abre fecha aberto aberta perto longe dinheiro chuveiro agua quente fria
            funciona nao chave recepcao estacionamento servico incluso incluido ar
            condicionado limpeza lencol travesseiro cama bebe berco animais cachorro trocar
            carregador esqueci reservar mesa academia agora tarde cedo saida entrada fica
            tambem mais""",
    "fr": """le la les un une des du de au aux et ou est sont il elle y quel quelle quels
            quelles comment combien quand je tu vous nous on mon ma mes votre vos avez avons
            ai peux peut pouvez puis pour avec dans en sur heure heures mot passe mdp chambre
            petit dejeuner dej diner piscine plage arriver aeroport prix coute merci bonjour
            salut besoin voudrais veux faire svp plait serviettes carte valises bagages apres
            avant demain aujourd hui soir nuit jusqu ouvert ouverte ferme fermee pres loin
            especes douche eau chaude froide marche fonctionne cle reception parking service
            inclus clim climatisation menage draps oreiller lit bebe animaux chien argent
            changer chargeur oublie reserver table salle sport maintenant tard tot depart pas
            ne ce cette ici se trouve""",
}
_WORDS = {language: frozenset(words.split()) for language, words in _LISTS.items()}
# Letters only one of the languages uses; each counts as two words.
_MARKS: dict[Language, str] = {"es": "ñ¿¡", "pt": "ãõ", "fr": "èëîïûùœ"}


@functools.cache
def _model() -> Any:  # py3langid has no type hints
    # Imported here: loading takes about half a second, which commands that never detect
    # a language should not pay.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    full = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    full.set_languages(list(LANGUAGES))
    # A new identifier with only the four languages' columns: set_languages keeps the whole
    # model (every language) beside them, some 25 MB more in each process.
    return LanguageIdentifier(
        full.nb_ptc.copy(),
        full.nb_pc.copy(),
        list(full.nb_classes),
        full.tk_nextmove,
        full.tk_output,
        norm_probs=True,
        tk_row=full.tk_row,
    )


def load() -> None:
    """Load the model now rather than on the first question."""
    _model()


def by_words(text: str) -> Language | None:
    """The language most of the words belong to; None when none or a tie."""
    lowered = text.lower()
    score = dict.fromkeys(LANGUAGES, 0)
    for language, letters in _MARKS.items():
        score[language] += 2 * sum(ch in letters for ch in lowered)
    plain = unicodedata.normalize("NFKD", lowered).encode("ascii", "ignore").decode()
    for word in re.findall(r"[a-z]+", plain):
        for language in LANGUAGES:
            score[language] += word in _WORDS[language]
    best = max(score.values())
    leaders = [language for language in LANGUAGES if score[language] == best]
    return leaders[0] if best > 0 and len(leaders) == 1 else None


def detect_language(text: str) -> Language:
    """'es', 'en', 'pt' or 'fr'; Spanish when it cannot tell."""
    text = text[:MAX_CHARS]
    if not any(ch.isalpha() for ch in text):
        return DEFAULT
    guess, probability = _model().classify(text)
    if probability >= SURE:
        return cast(Language, guess)
    return by_words(text) or DEFAULT
