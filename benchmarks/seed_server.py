"""The serving benchmark's baseline: the seed's handler style (Flask + torch eager +
torchvision transforms) on the same trained weights, run by gunicorn as
``seed_server:app()`` with ``BENCH_MODEL_DIR`` pointing at the model."""

from __future__ import annotations

import io
import os
from pathlib import Path


def app():
    import torch
    from flask import Flask, Response, request
    from PIL import Image
    from torchvision import transforms

    from bincounter.modelcard import MODEL_PTH, ModelCard
    from bincounter.training.models import build_model

    torch.set_num_threads(int(os.environ.get("BASELINE_TORCH_THREADS", "1")))
    model_dir = Path(os.environ["BENCH_MODEL_DIR"])
    card = ModelCard.read(model_dir)
    model = build_model(card.arch, len(card.classes), pretrained=False)
    model.load_state_dict(torch.load(model_dir / MODEL_PTH, map_location="cpu", weights_only=True))
    model.eval()
    size = card.preprocess.image_size
    transform = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor(),
                                    transforms.Normalize(card.preprocess.mean, card.preprocess.std)])
    flask_app = Flask("baseline")

    @flask_app.get("/ping")
    def ping():
        return Response(b"", status=200)

    @flask_app.post("/invocations")
    def invocations():
        image = Image.open(io.BytesIO(request.get_data())).convert("RGB")
        with torch.no_grad():
            probs = torch.softmax(model(transform(image).unsqueeze(0)), 1)[0].tolist()
        best = max(range(len(probs)), key=probs.__getitem__)
        return {"count": card.classes[best], "probabilities": dict(zip(map(str, card.classes), probs))}

    return flask_app
