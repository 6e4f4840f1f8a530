"""nbgrader's exchange, kept by an ngshare or ngshare_s3 service of a JupyterHub."""

from .collect import ExchangeCollect
from .configure import configureExchange
from .exchange import Exchange
from .fetch_assignment import ExchangeFetchAssignment
from .fetch_feedback import ExchangeFetchFeedback
from .list import ExchangeList
from .release_assignment import ExchangeReleaseAssignment
from .release_feedback import ExchangeReleaseFeedback
from .service import ServiceError
from .submit import ExchangeSubmit

__version__ = '0.1.0'

__all__ = [
    'Exchange',
    'ExchangeCollect',
    'ExchangeFetchAssignment',
    'ExchangeFetchFeedback',
    'ExchangeList',
    'ExchangeReleaseAssignment',
    'ExchangeReleaseFeedback',
    'ExchangeSubmit',
    'ServiceError',
    'configureExchange',
]
