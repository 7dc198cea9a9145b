"""expect: error (whole exercise) -- a syntax error, reported once with its line."""
def softmax(x, dim=-1)
    return x
