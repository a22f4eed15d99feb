"""Writes a deterministic WhatsApp export of N messages (iOS or Android format) for `make bench`.

usage: python gen_export.py PATH N [ios|android]"""
import random, sys

path, n = sys.argv[1], int(sys.argv[2])
fmt = sys.argv[3] if len(sys.argv) > 3 else "ios"
rnd = random.Random(7)
authors = ["Ali", "Sara", "~\u202fReza", "+98 912 345 6789", "Mina"]
words = ("hi ok see you tomorrow at home tea coffee movie tonight work school سلام خوبی مرسی خونه فردا "
         "چای شام باشه 😂 👍").split()
y, mo, d, h, mi, s = 2023, 1, 15, 9, 0, 0
with open(path, "w", encoding="utf-8") as f:
    for i in range(n):
        s += rnd.randint(1, 90)
        mi += s // 60; s %= 60; h += mi // 60; mi %= 60; d += h // 24; h %= 24
        if d > 28: d = 1; mo += 1
        if mo > 12: mo = 1; y += 1
        text = " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 12)))
        if rnd.random() < 0.05: text += "\n" + " ".join(rnd.choice(words) for _ in range(5))
        if rnd.random() < 0.02: text = "\u200eimage omitted"
        a = rnd.choice(authors)
        hh = h % 12 or 12; ap = "AM" if h < 12 else "PM"
        if fmt == "ios":
            f.write(f"[{d}/{mo}/{y % 100}, {hh}:{mi:02}:{s:02}\u202f{ap}] {a}: {text}\n")
        else:
            f.write(f"{d:02}/{mo:02}/{y}, {h:02}:{mi:02} - {a}: {text}\n")
