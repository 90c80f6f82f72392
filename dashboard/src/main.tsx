import { render } from 'preact';
import './styles.css';
import { App } from './app.js';

const saved = localStorage.getItem('dvic-theme');
if (saved && saved !== 'auto') document.documentElement.dataset.theme = saved;
render(<App />, document.getElementById('app')!);
