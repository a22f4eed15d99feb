"""scikit-learn on the same attribution split as benches/attribution.rs (tinyshakespeare, the 8 most frequent
speakers, each one's last 20% of speeches held out): char_wb 3–5-gram TF-IDF (sublinear) with multinomial naive
Bayes (banter's classifier), nearest centroid, and a linear SVM. Prints `name accuracy fit+predict seconds`.

usage: python sklearn_reference.py TINYSHAKESPEARE"""
import sys, time
from collections import Counter
from sklearn.feature_extraction.text import TfidfVectorizer, CountVectorizer
from sklearn.naive_bayes import MultinomialNB
from sklearn.neighbors import NearestCentroid
from sklearn.svm import LinearSVC

text = open(sys.argv[1], encoding="utf-8").read()
speeches = []
for block in text.split("\n\n"):
    lines = block.split("\n")
    if len(lines) < 2 or not lines[0].endswith(":"):
        continue
    name = lines[0][:-1]
    if name and all(c.isalpha() or c == " " for c in name):
        speeches.append((name, " ".join(l for l in lines[1:] if l)))
counts = Counter(n for n, _ in speeches)
top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
fit_x, fit_y, held_x, held_y = [], [], [], []
for i, (name, n) in enumerate(top):
    mine = [s for a, s in speeches if a == name]
    cut = int(n * 0.8)
    fit_x += mine[:cut]; fit_y += [i] * cut
    held_x += mine[cut:]; held_y += [i] * (n - cut)

def run(name, vec, clf):
    t = time.perf_counter()
    X = vec.fit_transform(fit_x)
    clf.fit(X, fit_y)
    pred = clf.predict(vec.transform(held_x))
    dt = time.perf_counter() - t
    acc = sum(int(p == y) for p, y in zip(pred, held_y)) / len(held_y)
    print(f"{name}\t{acc:.4f}\t{dt:.3f}")

run("scikit-learn char_wb 3-5 counts + MultinomialNB(alpha=0.1, uniform prior)",
    CountVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True), MultinomialNB(alpha=0.1, fit_prior=False))
run("scikit-learn char_wb 3-5 TF-IDF + NearestCentroid",
    TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True), NearestCentroid())
run("scikit-learn char_wb 3-5 TF-IDF + LinearSVC",
    TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True), LinearSVC())
