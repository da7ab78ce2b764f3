"""Month 5 graders are tested like code: predicting without model.eval(), a validation accuracy
measured on the training rows, a hard-coded device, top-k by raw dot product, a prompt without
the retrieved context, a temperature that is not 0 and an answer that is not the model's reply
lose exactly the points they should, with a hint that names the mistake. Training is the
expensive part, so each mutant notebook holds only the cells it needs (the tests of the missing
questions then fail too, and the expected sets say so). A correct solution written differently
(nn.Module subclasses, another CNN, scikit-learn's cosine_similarity, keyword arguments) earns
full marks; the reference earns full marks twice with the same scores and the starter zero."""

from __future__ import annotations

import nbformat
import pytest
from tests.conftest import failed_tests, feedback_by_test, notebook_from_cells, solution, validated_runs

pytestmark = [pytest.mark.kernel, pytest.mark.slow]  # each grades a notebook: 5-35 s

MLP_TESTS = {"test_get_device", "test_build_mlp", "test_mlp_heldout_accuracy",
             "test_predict_in_eval_mode", "test_val_accuracy_is_on_validation_rows"}
CNN_TESTS = {"test_build_cnn", "test_cnn_heldout_accuracy"}
TEXT_TESTS = {"test_cosine_top_k", "test_retrieve_finds_the_document",
              "test_rag_prompt_carries_context", "test_rag_temperature_zero",
              "test_rag_answer_comes_from_client"}
ALL_TESTS = MLP_TESTS | CNN_TESTS | TEXT_TESTS
TOTAL = 15


def _cell(marker: str) -> str:
    """The reference solution's code cell containing ``marker``."""
    cells = [c.source for c in solution("month5").cells
             if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1, marker
    return cells[0]


SETUP = "def make_data"

# --- predict without model.eval() (Dropout drops, BatchNorm uses the batch's statistics) -----
NO_EVAL = '''
def train_model(X, y):
    torch.manual_seed(0)
    model = build_mlp(X.shape[1], int(np.max(y)) + 1)
    loader = DataLoader(TensorDataset(torch.as_tensor(X), torch.as_tensor(y)), batch_size=64,
                        shuffle=True, generator=torch.Generator().manual_seed(0))
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(30):
        for xb, yb in loader:
            optimiser.zero_grad()
            loss_fn(model(xb), yb).backward()
            optimiser.step()
    return model


def predict(model, X):
    with torch.no_grad():  # but the model is still in training mode
        return model(torch.as_tensor(X, dtype=torch.float32)).argmax(dim=1).numpy()
'''

# --- a hard-coded device; validation accuracy measured on the training rows ------------------
HARD_CODED_DEVICE = '''
def get_device():
    return torch.device("cpu")
'''
TRAINING_ROWS_ACCURACY = "\n".join(
    line for line in _cell("def train_model").splitlines()
    if not line.startswith(("val_accuracy", "print("))
) + '''
val_accuracy = float((predict(mlp_model, X_train) == y_train).mean())
'''

# --- retrieval and RAG mistakes --------------------------------------------------------------
DOT_PRODUCT_TOP_K = '''
from sklearn.feature_extraction.text import TfidfVectorizer


def cosine_top_k(query, matrix, k):
    scores = np.asarray(matrix) @ np.asarray(query)  # no normalisation: long rows win
    return [int(i) for i in np.argsort(-scores)[:k]]


def retrieve(question, documents, k):
    vectorizer = TfidfVectorizer()
    doc_vectors = vectorizer.fit_transform(documents).toarray()
    return cosine_top_k(vectorizer.transform([question]).toarray()[0], doc_vectors, k)
'''
NO_CONTEXT = '''
def answer_question(question, documents, client):
    retrieve(question, documents, 2)
    return client.generate(f"Answer this question: {question}", temperature=0).strip()
'''
HOT_AND_HARD_CODED = '''
def answer_question(question, documents, client):
    best = retrieve(question, documents, 2)
    context = "\\n".join(documents[i] for i in best)
    client.generate(f"Context:\\n{context}\\n\\nQuestion: {question}", temperature=0.7)
    return documents[best[0]]  # the top document, not the model's answer
'''

# --- a correct solution, written differently ------------------------------------------------
ALT_MLP = '''
import torch.nn.functional as F
from sklearn.metrics import accuracy_score


def get_device():
    if torch.cuda.is_available():
        return torch.device("cuda:0")
    return torch.device("cpu")


class Classifier(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_in, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Linear(64, n_out)

    def forward(self, x):
        return self.head(self.body(x))


def build_mlp(n_features, n_classes):
    return Classifier(n_features, n_classes)


def _fit(net, inputs, targets, epochs, lr, batch):
    torch.manual_seed(0)
    dev = get_device()
    net = net.to(dev)
    data = DataLoader(TensorDataset(inputs, targets), batch_size=batch, shuffle=True)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for epoch in range(epochs):
        for xb, yb in data:
            opt.zero_grad()
            F.cross_entropy(net(xb.to(dev)), yb.to(dev)).backward()
            opt.step()
    return net


def train_model(X, y):
    torch.manual_seed(0)
    net = build_mlp(X.shape[1], len(np.unique(y)))
    return _fit(net, torch.tensor(X, dtype=torch.float32), torch.tensor(y), 25, 3e-3, 32)


def predict(model, X):
    model.eval()
    with torch.inference_mode():
        probs = torch.softmax(model(torch.tensor(X, dtype=torch.float32).to(get_device())), dim=1)
    return probs.argmax(dim=1).to("cpu").numpy()


mlp_model = train_model(X_train, y_train)
val_accuracy = float(accuracy_score(y_val, predict(mlp_model, X_val)))
'''
ALT_CNN = '''
from sklearn.datasets import load_digits


class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3)  # 8x8 -> 6x6
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(32 * 6 * 6, 10)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(self.drop(torch.flatten(x, 1)))


def build_cnn():
    return DigitNet()


def _prepare(images):
    return torch.tensor(np.asarray(images), dtype=torch.float32)[:, None, :, :] / 16.0


def train_cnn(images, labels):
    return _fit(build_cnn(), _prepare(images), torch.tensor(labels, dtype=torch.long), 15, 3e-3, 32)


def predict_digits(model, images):
    model.eval()
    with torch.no_grad():
        return model(_prepare(images).to(get_device())).argmax(1).cpu().numpy()
'''
ALT_TEXT = '''
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity


def cosine_top_k(query, matrix, k):
    sims = cosine_similarity(np.atleast_2d(query), np.asarray(matrix))[0]
    return sorted(range(len(sims)), key=lambda i: -sims[i])[:k]


def retrieve(question, documents, k):
    tfidf = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit(documents)
    return cosine_top_k(tfidf.transform([question]).toarray()[0],
                        tfidf.transform(documents).toarray(), k)


def answer_question(question, documents, client):
    hits = retrieve(question, documents, k=2)
    lines = ["You answer questions from the documents below, and only from them."]
    lines += [f"[{n + 1}] {documents[i]}" for n, i in enumerate(hits)]
    lines += ["", f"Q: {question}", "A:"]
    answer = client.generate(prompt="\\n".join(lines), temperature=0.0)
    return answer.strip()
'''


def _short(*cells: str) -> nbformat.NotebookNode:
    return notebook_from_cells(_cell(SETUP), *cells)



def test_predict_without_eval_mode(grade):
    result = grade("month5", _short(_cell("def get_device"), _cell("def build_mlp"), NO_EVAL))
    assert result.status == "graded"
    # the held-out accuracy can survive the mistake; the eval-mode test is what catches it
    assert failed_tests(result) == (ALL_TESTS - {"test_get_device", "test_build_mlp",
                                                 "test_mlp_heldout_accuracy"})
    feedback = feedback_by_test(result)
    assert "model.eval()" in feedback["test_predict_in_eval_mode"]
    assert "`mlp_model` is not defined" in feedback["test_val_accuracy_is_on_validation_rows"]


def test_hard_coded_device_and_accuracy_on_training_rows(grade):
    nb = _short(HARD_CODED_DEVICE, _cell("def build_mlp"), TRAINING_ROWS_ACCURACY)
    result = grade("month5", nb)
    assert result.status == "graded"
    assert failed_tests(result) == ({"test_get_device", "test_val_accuracy_is_on_validation_rows"}
                                    | CNN_TESTS | TEXT_TESTS)
    feedback = feedback_by_test(result)
    assert "do not hard-code the device" in feedback["test_get_device"]
    assert "not on the rows the model was trained on" in feedback[
        "test_val_accuracy_is_on_validation_rows"]


def test_dot_product_top_k_and_prompt_without_context(grade):
    result = grade("month5", _short(DOT_PRODUCT_TOP_K, NO_CONTEXT))
    assert result.status == "graded"
    # TF-IDF rows are unit length, so retrieval itself still works with a dot product
    assert failed_tests(result) == (MLP_TESTS | CNN_TESTS
                                    | {"test_cosine_top_k", "test_rag_prompt_carries_context"})
    feedback = feedback_by_test(result)
    assert "raw dot product" in feedback["test_cosine_top_k"]
    assert "does not contain the retrieved document" in feedback["test_rag_prompt_carries_context"]


def test_temperature_not_zero_and_answer_not_from_model(grade):
    result = grade("month5", _short(_cell("def cosine_top_k"), HOT_AND_HARD_CODED))
    assert result.status == "graded"
    assert failed_tests(result) == (MLP_TESTS | CNN_TESTS | {"test_rag_temperature_zero",
                                                             "test_rag_answer_comes_from_client"})
    feedback = feedback_by_test(result)
    assert "temperature=0" in feedback["test_rag_temperature_zero"]
    assert "model's reply" in feedback["test_rag_answer_comes_from_client"]


def test_correct_alternative_earns_full_marks(grade):
    result = grade("month5", _short(ALT_MLP, ALT_CNN, ALT_TEXT))
    assert {t.id for t in result.tests} == ALL_TESTS
    assert [(t.id, t.feedback) for t in result.tests if t.status != "passed"] == []
    assert result.full_marks and result.score == TOTAL


def test_reference_full_marks_twice_and_starter_zero():
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month5")
    assert solution_run.score == again.score == TOTAL and starter.score == 0
    assert [t.earned for t in solution_run.tests] == [t.earned for t in again.tests]
    assert {t.id for t in starter.tests} == ALL_TESTS
    assert all("not implemented yet" in t.feedback for t in starter.tests
               if t.id != "test_val_accuracy_is_on_validation_rows")
