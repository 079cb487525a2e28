"""Paging and sorting of search results (``count``, ``start``, ``sort``).

As in GraceDb, the ``links`` of every list always hold ``next`` and
``previous``, ``null`` where there is no such page: the ligo-gracedb
client walks a search by following ``links.next`` until it is null.
Searches (events, superevents) are paged; the lists of one object's
logs, labels, VOEvents and events are one page holding everything.
"""
from urllib.parse import urlencode

from flask import abort, request
from sqlalchemy import func, select

__all__ = ('page', 'whole_list', 'DEFAULT_COUNT', 'MAX_COUNT')

#: Results per page when the client does not say.
DEFAULT_COUNT = 100

#: Most results per page.
MAX_COUNT = 1000


def _integer(name, default, low, high):
    value = request.args.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        abort(400, description=f'{name} must be an integer, not {value!r}')
    if not low <= number <= high:
        abort(400, description=f'{name} must be between {low} and {high}')
    return number


def page(session, query, sortable, default_order, url):
    """Run a search query for one page.

    Returns
    -------
    rows : list
    links : dict
        ``self``, ``next``, ``previous``, ``first`` and ``last``;
        ``next`` and ``previous`` are ``None`` on the last and first page.
    total : int
    start : int
    """
    count = _integer('count', DEFAULT_COUNT, 1, MAX_COUNT)
    start = _integer('start', 0, 0, 2 ** 31)
    order = []
    for key in filter(None, request.args.get('sort', '').split(',')):
        column = sortable.get(key.lstrip('-'))
        if column is None:
            abort(400, description=f'cannot sort by {key!r}; choose from '
                                   f'{", ".join(sortable)}')
        order.append(column.desc() if key.startswith('-') else column.asc())
    order.append(default_order.asc())
    total = session.scalar(select(func.count()).select_from(
        query.subquery()))
    rows = session.scalars(
        query.order_by(*order).offset(start).limit(count)).all()
    args = {k: v for k, v in request.args.items() if k != 'start'}

    def link(at):
        return url + '?' + urlencode({**args, 'start': at})

    links = {'self': link(start),
             'next': link(start + count) if start + count < total else None,
             'previous': link(max(0, start - count)) if start else None,
             'first': link(0),
             'last': link(max(0, (total - 1) // count * count))}
    return rows, links, total, start


def whole_list(key, items, url):
    """The JSON of a list that is one page.

    Parameters
    ----------
    key : str
        Name of the list in the answer (``log``, ``labels``, …).
    items : list
    url : str
        Address of the list: its ``self``, ``first`` and ``last`` page.

    Returns
    -------
    dict
        ``{key: items, 'numRows', 'start': 0, 'links'}``, with ``next``
        and ``previous`` null.
    """
    return {key: items, 'numRows': len(items), 'start': 0,
            'links': {'self': url, 'next': None, 'previous': None,
                      'first': url, 'last': url}}
