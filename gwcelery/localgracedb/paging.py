"""Paging and sorting of search results (``count``, ``start``, ``sort``)."""
from urllib.parse import urlencode

from flask import abort, request
from sqlalchemy import func, select

__all__ = ('page', 'DEFAULT_COUNT', 'MAX_COUNT')

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
        ``self``, ``first``, ``last`` and, when there are more, ``next``.
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

    links = {'self': link(start), 'first': link(0),
             'last': link(max(0, (total - 1) // count * count))}
    if start + count < total:
        links['next'] = link(start + count)
    return rows, links, total, start
