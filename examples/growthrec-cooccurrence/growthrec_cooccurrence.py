"""A growthrec backend: recommend what is bought together with what the customer bought."""

import numpy as np

import growthrec


class CooccurrenceBackend:
    name = "cooccurrence"
    description = "Bought together: P(j | i) from co-purchases, summed over the basket"
    params = (
        growthrec.Param("min_count", 1, "ignore pairs bought together fewer times", minimum=1),
    )

    def fit(self, matrix, params, rng):
        binary = (matrix > 0).astype(np.float32)
        together = (binary.T @ binary).toarray()  # items x items: fine for small catalogues
        buyers = np.diag(together).copy()
        np.fill_diagonal(together, 0)
        together[together < params["min_count"]] = 0
        return {"item_item": together / np.maximum(buyers, 1)[:, None]}  # row i: P(j | i)

    def score(self, arrays, params, rows, users):
        return np.asarray((rows > 0).astype(np.float32) @ arrays["item_item"])


@growthrec.hookimpl
def register_backends(register):
    register(CooccurrenceBackend())
