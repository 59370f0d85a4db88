"""Package setup read from settings.ini with configparser (the nbdev template's setup.py needs
pkg_resources, which current setuptools no longer ships)."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
ray_requirements = cfg.get('ray_requirements', '').split()   # the `ray` extra: executor='ray' of ssmnas.sweep
console_scripts = cfg.get('console_scripts', '').split()

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    license='Apache Software License 2.0',
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['ssmnas', 'ssmnas.*']),
    include_package_data=True,
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'ray': ray_requirements},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    entry_points={'console_scripts': console_scripts},
    zip_safe=False,
)
