"""Tables of the local GraceDb.

Logs, labels and files belong to an event or a superevent; they refer to it
by ``object_id``: the event's graceid or the superevent's original
``S``/``TS``/``MS`` identifier (which never changes, even after the
superevent is confirmed as a GW).
"""
import datetime

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Integer,
                        LargeBinary, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ('Base', 'Event', 'Superevent', 'Label', 'Log', 'Tag', 'File',
           'VOEvent', 'utcnow')


def utcnow():
    """The current UTC time, without time zone (as stored)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    """The declarative base of the tables."""


class Event(Base):
    """An event: one upload, and what the server read from it."""

    __tablename__ = 'event'

    id: Mapped[int] = mapped_column(primary_key=True)
    graceid: Mapped[str | None] = mapped_column(String(32), unique=True)
    group: Mapped[str] = mapped_column(String(32))
    pipeline: Mapped[str] = mapped_column(String(32))
    search: Mapped[str | None] = mapped_column(String(32))
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    gpstime: Mapped[float | None] = mapped_column(Float, index=True)
    far: Mapped[float | None] = mapped_column(Float)
    instruments: Mapped[str] = mapped_column(String(64), default='')
    nevents: Mapped[int | None] = mapped_column(Integer)
    likelihood: Mapped[float | None] = mapped_column(Float)
    extra_attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    superevent_id: Mapped[str | None] = mapped_column(
        ForeignKey('superevent.superevent_id'), index=True)
    submitter: Mapped[str] = mapped_column(String(64), default='')
    created: Mapped[datetime.datetime] = mapped_column(
        DateTime, default=utcnow)


class Superevent(Base):
    """A superevent: its time window, preferred event and GW id."""

    __tablename__ = 'superevent'
    __table_args__ = (UniqueConstraint('category', 'date', 'sequence'),)

    id: Mapped[int] = mapped_column(primary_key=True)
    superevent_id: Mapped[str] = mapped_column(String(32), unique=True)
    gw_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    category: Mapped[str] = mapped_column(String(1))
    date: Mapped[str] = mapped_column(String(6))
    sequence: Mapped[int] = mapped_column(Integer)
    t_start: Mapped[float] = mapped_column(Float)
    t_0: Mapped[float] = mapped_column(Float, index=True)
    t_end: Mapped[float] = mapped_column(Float)
    preferred_event: Mapped[str] = mapped_column(String(32))
    em_type: Mapped[str | None] = mapped_column(String(64))
    time_coinc_far: Mapped[float | None] = mapped_column(Float)
    space_coinc_far: Mapped[float | None] = mapped_column(Float)
    submitter: Mapped[str] = mapped_column(String(64), default='')
    created: Mapped[datetime.datetime] = mapped_column(
        DateTime, default=utcnow)


class Label(Base):
    """A label on an event or superevent."""

    __tablename__ = 'label'
    __table_args__ = (UniqueConstraint('object_id', 'name'),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(64))
    creator: Mapped[str] = mapped_column(String(64), default='')
    created: Mapped[datetime.datetime] = mapped_column(
        DateTime, default=utcnow)


class Log(Base):
    """A log entry of an event or superevent, with its file if any."""

    __tablename__ = 'log'
    __table_args__ = (UniqueConstraint('object_id', 'N'),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[str] = mapped_column(String(32), index=True)
    N: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default='')
    filename: Mapped[str] = mapped_column(String(255), default='')
    file_version: Mapped[int | None] = mapped_column(Integer)
    issuer: Mapped[str] = mapped_column(String(64), default='')
    created: Mapped[datetime.datetime] = mapped_column(
        DateTime, default=utcnow)
    tags: Mapped[list['Tag']] = relationship(
        back_populates='log', order_by='Tag.id', cascade='all')


class Tag(Base):
    """A tag on a log entry."""

    __tablename__ = 'tag'
    __table_args__ = (UniqueConstraint('log_id', 'name'),)

    id: Mapped[int] = mapped_column(primary_key=True)
    log_id: Mapped[int] = mapped_column(ForeignKey('log.id'), index=True)
    name: Mapped[str] = mapped_column(String(64))
    display: Mapped[str] = mapped_column(String(128), default='')
    log: Mapped[Log] = relationship(back_populates='tags')


class File(Base):
    """One version of a file of an event or superevent."""

    __tablename__ = 'file'
    __table_args__ = (UniqueConstraint('object_id', 'name', 'version'),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[datetime.datetime] = mapped_column(
        DateTime, default=utcnow)


class VOEvent(Base):
    """A VOEvent that the server built, with the parameters it was given."""

    __tablename__ = 'voevent'
    __table_args__ = (UniqueConstraint('object_id', 'N'),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[str] = mapped_column(String(32), index=True)
    N: Mapped[int] = mapped_column(Integer)
    voevent_type: Mapped[str] = mapped_column(String(2))
    ivorn: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(255))
    file_version: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    issuer: Mapped[str] = mapped_column(String(64), default='')
    created: Mapped[datetime.datetime] = mapped_column(
        DateTime, default=utcnow)
