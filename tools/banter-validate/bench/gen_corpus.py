"""Writes a deterministic chat corpus of about SIZE_MB megabytes to PATH (for `make bench`).

Mixed shapes (pairs, chats, text), English and Persian, emoji, some duplicates and bad samples, as real
persona data looks.   usage: python gen_corpus.py PATH SIZE_MB"""
import json, random, sys

path, size_mb = sys.argv[1], float(sys.argv[2])
rnd = random.Random(42)
en = ("the a to and of in is you that it for on with was are be have this at or what can do not we my "
      "your so but all about just like know time think good how when there would come going really "
      "tea morning mountains dinner tomorrow weekend movie music phone home work school family friends").split()
fa = ("من تو ما شما که از به در با این آن را برای یک خیلی خوب امروز فردا خونه کار شام چای کوه "
      "رفتیم میام میری باشه حتما دوست خانواده فیلم موسیقی هفته").split()
emoji = ["😂", "👋", "❤️", "🍕", "🙏", "😅", ""]

def sentence(words, n):
    s = " ".join(rnd.choice(words) for _ in range(n))
    return s[0].upper() + s[1:] + rnd.choice([".", "!", "?", " " + rnd.choice(emoji)]) if words is en else s + rnd.choice(["", "؟", "!", " " + rnd.choice(emoji)])

def reply():
    words = en if rnd.random() < 0.6 else fa
    return " ".join(sentence(words, rnd.randint(3, 14)) for _ in range(rnd.randint(1, 3)))

target = int(size_mb * 1e6)
written = 0
recent = []
with open(path, "w", encoding="utf-8") as f:
    i = 0
    while written < target:
        r = rnd.random()
        if r < 0.4:
            rec = {"id": i, "input": reply(), "output": reply()}
        elif r < 0.85:
            turns = [{"role": "system", "content": "You are Sara, 30, from Shiraz."}]
            for _ in range(rnd.randint(1, 3)):
                turns.append({"role": "user", "content": reply(), "name": rnd.choice(["Ali", "Reza", "Mina"])})
                turns.append({"role": "assistant", "content": reply()})
            rec = {"id": i, "messages": turns, "source": "whatsapp"}
        elif r < 0.95:
            rec = {"id": i, "text": "<USR_A> " + reply() + " <SYS> " + reply()}
        elif r < 0.98 and recent:
            rec = dict(rnd.choice(recent)); rec["id"] = i  # duplicate content
        else:
            rec = {"id": i, "input": reply(), "output": rnd.choice(["ok", "", "buy now " * 8, "https://example.org"])}
        if len(recent) < 1000:
            recent.append(rec)
        line = json.dumps(rec, ensure_ascii=False) + "\n"
        f.write(line)
        written += len(line.encode())
        i += 1
