"""costguard: a tenant cost guard for multi-tenant LLM platforms."""

import decimal

# A cost has up to 18 integer digits and 12 decimals (30 significant digits) and sums of many costs
# more; Python's default of 28 significant digits would round them. Every thread starts from
# DefaultContext, so raising it here keeps money exact in the API, the worker and the CLI alike.
MONEY_PRECISION = 60
decimal.DefaultContext.prec = MONEY_PRECISION
decimal.getcontext().prec = MONEY_PRECISION

__version__ = "0.1.0"
