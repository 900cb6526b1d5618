"""Word lists and visual/audio style tables of the alignment simulator.

Topic words are what a topic *says* (titles, tags, search queries). Filler words,
filler tags and author handles are shared by every topic: they are nuisance text
that dominates a title's embedding without saying anything about engagement.
Palettes and rhythms are the taste-relevant *media* styles: they appear only in the
pictures and the sound, never in the title, and queries name them in plain words.
"""

# topic: (title words, topic tags, query words). Query words overlap the title words
# only partly, so matching a query to an item is not string equality.
TOPICS = [
    ("cooking", ["pasta", "recipe", "kitchen", "baking", "noodles", "soup", "grill", "dumplings"],
     ["cooking", "foodie"], ["recipe", "dinner ideas", "how to cook", "easy meal", "homemade food"]),
    ("travel", ["beach", "mountains", "airport", "hostel", "island", "roadtrip", "backpacking", "harbor"],
     ["travel", "wanderlust"], ["travel vlog", "vacation", "places to visit", "trip abroad", "sightseeing"]),
    ("pets", ["puppy", "kitten", "hamster", "parrot", "dog", "cat", "aquarium", "bunny"],
     ["pets", "cuteanimals"], ["cute animals", "funny dog", "cat video", "pet care", "adorable pets"]),
    ("fitness", ["workout", "squats", "pushups", "yoga", "marathon", "gym", "stretching", "cardio"],
     ["fitness", "gymlife"], ["home workout", "exercise routine", "lose weight", "training plan", "muscle"]),
    ("gaming", ["speedrun", "boss", "controller", "multiplayer", "quest", "console", "level", "respawn"],
     ["gaming", "gamer"], ["video game", "gameplay", "walkthrough", "game tips", "esports"]),
    ("music", ["guitar", "piano", "drums", "violin", "concert", "melody", "singer", "chords"],
     ["music", "musician"], ["song cover", "instrument lesson", "live music", "band", "playing music"]),
    ("diy", ["woodworking", "shelf", "drill", "paint", "workbench", "repair", "sanding", "glue"],
     ["diy", "handmade"], ["home project", "build it yourself", "craft ideas", "fix at home", "tools"]),
    ("tech", ["smartphone", "laptop", "unboxing", "keyboard", "gadget", "processor", "headphones", "camera"],
     ["tech", "gadgets"], ["phone review", "new gadget", "computer", "electronics", "tech news"]),
    ("fashion", ["outfit", "sneakers", "jacket", "makeup", "dress", "hairstyle", "jewelry", "thrift"],
     ["fashion", "style"], ["what to wear", "clothes haul", "beauty tips", "outfit ideas", "trendy look"]),
    ("science", ["experiment", "chemistry", "physics", "telescope", "rocket", "microscope", "planets", "magnet"],
     ["science", "stem"], ["science explained", "cool experiment", "space", "how it works", "learn physics"]),
    ("cars", ["engine", "drift", "racing", "motorcycle", "garage", "tires", "turbo", "sedan"],
     ["cars", "motorsport"], ["car review", "fast car", "auto repair", "race track", "vehicle"]),
    ("gardening", ["tomatoes", "seedlings", "compost", "orchids", "greenhouse", "pruning", "soil", "harvest"],
     ["gardening", "plants"], ["grow vegetables", "plant care", "backyard garden", "flowers", "houseplants"]),
]

FILLER_WORDS = [
    "my", "the", "best", "quick", "episode", "weekly", "vlog", "ever", "part", "new", "first",
    "try", "honest", "guide", "live", "moments", "highlights", "random", "update", "day", "story",
    "today", "again", "finally", "really", "little", "big", "with", "friends", "family", "week",
    "challenge", "attempt", "reaction", "secret", "simple", "full", "version", "behind", "scenes",
    "we", "did", "this", "you", "need", "to", "see", "what", "happened", "next", "one", "more",
    "time", "morning", "evening", "sunday", "monday", "tiny", "huge", "short", "long", "trying",
    "ultimate", "everyday", "unexpected", "crazy", "classic", "original", "remix", "series",
]

FILLER_TAGS = [
    "fyp", "viral", "trending", "daily", "shorts", "foryou", "reels", "wow", "fun", "clip",
    "vlog", "mood", "2026", "explore", "new", "watch", "follow", "share", "best", "weekend",
]

HANDLE_ADJECTIVES = ["sunny", "lazy", "brave", "quiet", "wild", "lucky", "clever", "rusty", "fuzzy", "swift"]
HANDLE_NOUNS = ["fox", "otter", "panda", "falcon", "badger", "koala", "lynx", "heron", "moose", "gecko"]

# Palettes: the colour of a large box in every frame. (name, RGB, query words)
PALETTES = [
    ("ember", (224, 72, 24), ["orange", "warm colors", "fiery"]),
    ("ocean", (24, 80, 224), ["blue", "cool colors", "ocean blue"]),
    ("forest", (32, 168, 64), ["green", "leafy green", "emerald"]),
    ("neon", (224, 32, 192), ["pink", "neon", "magenta"]),
]

# Rhythms: the shape of the soundtrack. (name, query words)
RHYTHMS = [
    ("calm", ["calm tone", "soothing", "steady hum"]),
    ("pulse", ["pulsing beat", "upbeat", "rhythmic"]),
    ("sweep", ["rising sweep", "whoosh", "siren"]),
    ("static", ["static noise", "crackling", "white noise"]),
]

# Scene families: the nuisance that dominates the picture (see media.py).
SCENES = ["testsrc2", "mandelbrot", "life", "cellauto", "gradients", "smptebars", "noise", "rgbtestsrc"]
