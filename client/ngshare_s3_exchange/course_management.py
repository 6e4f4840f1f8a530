"""ngshare-course-management: create courses and keep their rosters on the exchange.

The same commands and arguments as ngshare_exchange's tool of that name, so existing scripts keep
working. It manages the exchange's rosters only; nbgrader's gradebook takes students as
`nbgrader autograde` meets them, or from `nbgrader db student import`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys

from nbgrader.apps.baseapp import NbGrader
from nbgrader.exchange.abc.exchange import ExchangeError

from .exchange import Exchange
from .service import ServiceError


def exchange_from_config() -> Exchange:
    """An Exchange configured as nbgrader would be here (nbgrader_config.py in the Jupyter
    config path or this folder)."""
    app = NbGrader()
    app.load_config_file()
    return Exchange(config=app.config)


def names(args) -> dict:
    return {'first_name': args.first_name or '', 'last_name': args.last_name or '', 'email': args.email or ''}


def create_course(call, args):
    call('POST', f'/course/{args.course_id}', data={'instructors': json.dumps(args.instructors)})
    print(f'Successfully created {args.course_id}')


def add_instructor(call, args):
    call('POST', f'/instructor/{args.course_id}/{args.instructor_id}', data=names(args))
    print(f'Successfully added {args.instructor_id} as an instructor to {args.course_id}')


def remove_instructor(call, args):
    call('DELETE', f'/instructor/{args.course_id}/{args.instructor_id}')
    print(f'Successfully deleted instructor {args.instructor_id} from {args.course_id}')


def add_student(call, args):
    call('POST', f'/student/{args.course_id}/{args.student_id}', data=names(args))
    print(f'Successfully added/updated {args.student_id} on {args.course_id}')


def add_students(call, args):
    with open(args.csv_file, newline='') as file:
        rows = list(csv.DictReader(file))
    if not rows or 'student_id' not in rows[0]:
        raise ServiceError(f'{args.csv_file} needs a header line with student_id (and first_name, last_name, email)')
    students = [
        {'username': row['student_id'], **{key: row.get(key) or '' for key in ('first_name', 'last_name', 'email')}}
        for row in rows
    ]
    answer = call('POST', f'/students/{args.course_id}', data={'students': json.dumps(students)})
    failed = 0
    for status in answer['status']:
        if status['success']:
            print(f'{status["username"]} was successfully added to {args.course_id}')
        else:
            failed += 1
            print(f'There was an error adding {status["username"]} to {args.course_id}: {status["message"]}', file=sys.stderr)
    if failed:
        raise ServiceError(f'{failed} of {len(students)} students were not added')


def remove_students(call, args):
    for student in args.students:
        call('DELETE', f'/student/{args.course_id}/{student}')
        print(f'Successfully deleted {student} from {args.course_id}')


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog='ngshare-course-management', description=__doc__.splitlines()[0])
    commands = main.add_subparsers(dest='command', required=True)

    def command(function, help):
        sub = commands.add_parser(function.__name__, help=help)
        sub.set_defaults(function=function)
        sub.add_argument('course_id')
        return sub

    def with_names(sub):
        sub.add_argument('-f', '--first_name')
        sub.add_argument('-l', '--last_name')
        sub.add_argument('-e', '--email')
        return sub

    def with_gradebook_flag(sub):
        sub.add_argument('--no-gb', action='store_true', help='accepted for compatibility; the gradebook is never changed')
        return sub

    command(create_course, 'create a course (exchange admins)').add_argument('instructors', nargs='*')
    with_names(command(add_instructor, 'add or update an instructor')).add_argument('instructor_id')
    command(remove_instructor, 'remove an instructor').add_argument('instructor_id')
    with_gradebook_flag(with_names(command(add_student, 'add or update a student'))).add_argument('student_id')
    with_gradebook_flag(command(add_students, 'add or update the students of a CSV file')).add_argument('csv_file')
    removal = with_gradebook_flag(command(remove_students, 'remove students and their submissions'))
    removal.add_argument('students', nargs='+')
    removal.add_argument('--force', action='store_true', help='accepted for compatibility')
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.function(exchange_from_config().service.call, args)
    except (ExchangeError, OSError) as error:
        print(f'ngshare-course-management {args.command} failed: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
