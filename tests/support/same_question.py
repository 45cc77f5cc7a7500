"""Guest questions, each in several wordings (Spanish and English), for the unanswered
report's grouping: two wordings of one group ask the same thing; two of different groups
do not, however near their topics (late check-out and early check-in, extra towels and
beach towels, a heated pool and the pool's hours).

Written for posada, in the way guests type. `TUNING` (with bench/labels/real's tuning half)
chose the threshold (`posada.staff.report.SAME_QUESTION`); `TESTING` only checks it.
"""

from __future__ import annotations

TUNING: list[list[str]] = [
    ["¿Hay un helipuerto para mi helicóptero?", "can I land a helicopter at the hotel?",
     "is there a helipad", "dónde puedo aterrizar con helicóptero"],
    ["Is there a casino with roulette tables?", "hay casino cerca?",
     "where can I play poker or roulette", "dónde hay un casino para jugar ruleta"],
    ["can we check out late?", "¿puedo dejar la habitación más tarde del mediodía?",
     "late check-out possible?", "se puede hacer el checkout a las 3 de la tarde"],
    ["can we check in early?", "¿podemos entrar a la habitación antes de las 3?",
     "early check-in possible?", "llegamos a las 9 de la mañana, podemos entrar ya al cuarto"],
    ["Are dogs allowed?", "¿puedo traer a mi perro?", "is the hotel pet friendly",
     "aceptan mascotas"],
    ["do you have a crib for a baby?", "¿tienen cuna para bebé?",
     "can we get a cot for our infant", "necesitamos una cuna en la habitación"],
    ["is there a laundry service?", "¿dónde puedo lavar la ropa?", "can you wash my clothes",
     "tienen lavandería"],
    ["Is there parking for a rental car?", "¿dónde puedo estacionar el carro?",
     "do you have a car park", "hay parqueadero"],
    ["is there a gym", "hay gimnasio en el hotel", "where can I work out",
     "tienen sala de pesas"],
    ["do you have vegan options at breakfast?", "¿el desayuno tiene opciones veganas?",
     "is there plant-based food for breakfast", "hay desayuno vegano"],
    ["do you offer airport pickup", "¿nos recogen en el aeropuerto?",
     "how much is the shuttle from the airport", "tienen traslado al aeropuerto"],
    ["where can I exchange dollars", "¿dónde cambio dólares a pesos?",
     "is there a currency exchange nearby", "casa de cambio cerca"],
    ["is there a doctor nearby", "¿dónde hay un médico?",
     "I need a doctor, where is the nearest clinic", "hay hospital cerca"],
    ["is there a hair dryer in the room", "¿hay secador de pelo?", "can I borrow a hairdryer",
     "tienen secador"],
    ["can we leave our bags after check-out", "¿guardan maletas?", "is there luggage storage",
     "dónde dejo el equipaje el último día"],
    ["what time are quiet hours", "¿a qué hora hay que hacer silencio?",
     "until when can we play music", "hasta qué hora se puede hacer ruido"],
    ["can I smoke on the balcony", "¿se puede fumar en la habitación?",
     "is there a smoking area", "dónde puedo fumar"],
    ["can I get extra towels", "¿me pueden traer más toallas?",
     "we need more towels in the room", "necesito toallas adicionales"],
]  # fmt: skip

TESTING: list[list[str]] = [
    ["do you lend beach towels?", "¿prestan toallas para la playa?",
     "can I take towels to the beach", "hay toallas de playa"],
    ["is there a spa", "¿hacen masajes?", "can I book a massage", "tienen spa en el hotel"],
    ["can we hold a wedding at the hotel", "¿se pueden hacer bodas en el hotel?",
     "do you host weddings", "quiero celebrar mi boda aquí"],
    ["is the hotel wheelchair accessible", "¿hay acceso para silla de ruedas?",
     "do you have rooms for disabled guests", "tienen habitaciones adaptadas"],
    ["where can I rent a bike", "¿dónde alquilo una bicicleta?", "do you rent bicycles",
     "alquiler de bicis cerca"],
    ["where is the nearest pharmacy", "¿hay una farmacia cerca?", "I need to buy medicine",
     "dónde compro medicamentos"],
    ["should I tip the staff", "¿se deja propina?", "how much do people tip here",
     "cuánto se da de propina"],
    ["what kind of power plugs are there", "¿qué tipo de enchufe usan?",
     "do I need an adapter for my charger", "necesito adaptador para el enchufe"],
    ["is there room service", "¿pueden traer comida a la habitación?",
     "can I order food to my room", "tienen servicio a la habitación"],
    ["is there an ATM nearby", "¿dónde hay un cajero automático?",
     "where can I withdraw cash", "cajero cerca del hotel"],
    ["can we rent kayaks", "¿alquilan kayaks?", "where can I go kayaking", "dónde hay kayak"],
    ["can I get an invoice for my stay", "¿me pueden dar factura?",
     "I need a receipt for my company", "necesito factura a nombre de mi empresa"],
    ["is there an iron", "¿tienen plancha para la ropa?", "can I borrow an iron",
     "necesito planchar una camisa"],
    ["how do I call a taxi", "¿cómo pido un taxi?", "can you book me a cab",
     "me pueden llamar un taxi"],
    ["is there a safe in the room", "¿hay caja fuerte?", "where can I keep my valuables",
     "tienen caja de seguridad"],
    ["is the pool heated", "¿la piscina es climatizada?", "how warm is the pool water",
     "está templada el agua de la piscina"],
    ["what time does the pool close", "¿a qué hora cierra la piscina?", "pool opening hours",
     "hasta qué hora se puede usar la piscina"],
]  # fmt: skip


def pairs(groups: list[list[str]]) -> list[tuple[str, str, bool]]:
    """Every two wordings of `groups`, and whether they ask the same thing."""
    flat = [(text, g) for g, group in enumerate(groups) for text in group]
    return [(a, b, ga == gb) for i, (a, ga) in enumerate(flat) for b, gb in flat[i + 1 :]]
