"""A small real PyTorch CPU training loop with DataLoader worker processes, marked with
powerprint_marks. Writes the samples it counted per phase to argv[1] (JSON) so the test can compare
them with the report independently of powerprint."""
import json
import sys

import torch
from torch.utils.data import DataLoader, TensorDataset

from powerprint_marks import mark, phase

torch.manual_seed(0)
torch.set_num_threads(1)


def main(out_path):
    x = torch.randn(4096, 64)
    y = (x[:, :8].sum(dim=1) > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, num_workers=2, persistent_workers=False)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    counts = {"train": 0, "eval": 0}
    seen = 0
    step = 0
    mark(phase="train", step=0, samples=0)
    for _epoch in range(3):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            step += 1
            seen += len(xb)
            counts["train"] += len(xb)
            mark(step=step, samples=seen)
        with phase("eval"):
            model.eval()
            with torch.no_grad():
                for xb, _yb in DataLoader(TensorDataset(x, y), batch_size=64, num_workers=2):
                    model(xb)
                    seen += len(xb)
                    counts["eval"] += len(xb)
                    mark(samples=seen)
    with open(out_path, "w") as f:
        json.dump(counts, f)


if __name__ == "__main__":
    main(sys.argv[1])
