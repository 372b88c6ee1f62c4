"""The fake GTZAN folder's generator under the short name the tests import it by
(``from fake_gtzan import make_fake_gtzan``; ``tests/`` is on ``sys.path``). It ships in the
package, :mod:`benchmark.testing.fake_gtzan`, because the feature-set check suite writes its
data with it."""

from benchmark.testing.fake_gtzan import *  # noqa: F403
from benchmark.testing.fake_gtzan import __all__  # noqa: F401
