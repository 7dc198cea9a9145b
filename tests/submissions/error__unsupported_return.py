"""expect: error -- a result object whose equality always holds never reaches the grader."""
import torch


class Always(torch.Tensor):
    def __eq__(self, other):
        return True


def softmax(x, dim=-1):
    return x.as_subclass(Always)
